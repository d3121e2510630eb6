"""What an analyst reads of a Sigma rule: its description, its detection logic as written,
and its ATT&CK tags sorted into tactics, techniques, groups and software."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import yaml

#: The top-level blocks that hold a rule's logic (`correlation:` for correlation rules).
LOGIC_BLOCKS = ("detection", "correlation")
_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:")
_ATTACK_ID = re.compile(r"^([tgs])(\d{4})(\.\d{3})?$")


@dataclass(frozen=True)
class RuleText:
    description: str
    #: The `detection:` (or `correlation:`) block exactly as the rule file writes it.
    logic: str


def logic_block(text: str) -> str:
    """The rule's `detection:` / `correlation:` block as written (comments and order kept):
    from its line to the next top-level key."""
    lines = text.splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        top = _TOP_KEY.match(line)
        if top:
            inside = top.group(1) in LOGIC_BLOCKS
        if inside:
            out.append(line)
    return "\n".join(out).rstrip()


def rule_text(text: str) -> RuleText:
    """Description and logic of a rule's YAML; empty parts when it cannot be read."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        doc = None
    description = doc.get("description", "") if isinstance(doc, dict) else ""
    return RuleText(str(description or "").strip(), logic_block(text))


class AttackKind(StrEnum):
    TACTIC = "tactic"
    TECHNIQUE = "technique"
    GROUP = "group"
    SOFTWARE = "software"


_KINDS = {"t": AttackKind.TECHNIQUE, "g": AttackKind.GROUP, "s": AttackKind.SOFTWARE}


@dataclass(frozen=True)
class AttackTag:
    kind: AttackKind
    #: `T1003.001`, `G0016`, `S0002`, or the tactic's words (`credential access`).
    label: str


def attack_tags(tags: str | list[str]) -> list[AttackTag]:
    """The `attack.*` tags of a rule (space separated, as the rules table keeps them)."""
    words = tags.split() if isinstance(tags, str) else tags
    out = []
    for tag in words:
        if not tag.lower().startswith("attack."):
            continue
        name = tag[len("attack.") :].lower()
        found = _ATTACK_ID.match(name)
        if found:
            label = f"{found.group(1).upper()}{found.group(2)}{found.group(3) or ''}"
            out.append(AttackTag(_KINDS[found.group(1)], label))
        elif name:
            out.append(AttackTag(AttackKind.TACTIC, name.replace("_", " ").replace("-", " ")))
    return out
