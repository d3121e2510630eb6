"""Sigma `|expand` placeholders: set, unset, list, import from a YAML file.

Each change is stored and audited (`store.placeholders`), then every rule that uses
placeholders is re-checked and the active set re-activated (`refresh_expanding_rules`): a
rule whose placeholders all have values compiles, one missing any is listed as "needs
placeholder values: %name%". Only the rules whose values changed get a new content hash,
so `casescope rules run` re-evaluates only them on the case's files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from casescope.config import Settings
from casescope.model.db import Database
from casescope.store.placeholders import (
    PlaceholderError,
    PlaceholderValues,
    list_placeholders,
    store_values,
)
from casescope.store.rulesets import refresh_expanding_rules

__all__ = [
    "PlaceholderChange",
    "PlaceholderError",
    "PlaceholderValues",
    "list_placeholders",
    "load_placeholder_file",
    "set_placeholders",
]


@dataclass(frozen=True)
class PlaceholderChange:
    changed: int  # placeholders whose values changed
    rules: int  # rules that now compile, or no longer do


def set_placeholders(
    db: Database,
    settings: Settings,
    values: Mapping[str, Sequence[str] | None],
    actor: str = "cli",
) -> PlaceholderChange:
    """Set each placeholder's values (None: unset it), then re-check the rules."""
    changed = sum(store_values(db, name, items, actor) for name, items in values.items())
    rules = refresh_expanding_rules(db, settings) if changed else 0
    return PlaceholderChange(changed, rules)


def load_placeholder_file(path: Path) -> dict[str, list[str]]:
    """`{known_cdcs: [DC01, DC02], admins: "alice, bob"}` from a YAML file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PlaceholderError(f"cannot read placeholder values from {path}: {exc}") from None
    if not isinstance(data, dict):
        raise PlaceholderError(f"{path} must map placeholder names to lists of values")
    out: dict[str, list[str]] = {}
    for name, items in data.items():
        if isinstance(items, str):
            items = items.split(",")
        if not isinstance(items, list) or not all(isinstance(v, str | int | float) for v in items):
            raise PlaceholderError(f"{path}: %{name}% must be a list of values")
        out[str(name)] = [str(v) for v in items]
    return out
