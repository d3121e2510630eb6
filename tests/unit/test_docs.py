"""Documentation is part of the feature: every setting is documented in the README."""

from __future__ import annotations

import re
import tomllib

from casescope.config import Settings
from tests.conftest import REPO_ROOT


def test_every_setting_is_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [
        f"CASESCOPE_{name.upper()}"
        for name in Settings.model_fields
        if f"`CASESCOPE_{name.upper()}`" not in readme
    ]
    assert not missing, f"settings missing from README Configuration: {missing}"


def test_readme_quick_start_has_the_two_scripts() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "scripts/quickstart.sh" in readme and "scripts/test.sh" in readme
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci


def _contract_layers() -> list[set[str]]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    [contract] = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [
        {name.strip().removeprefix("casescope.") for name in layer.split("|")}
        for layer in contract["layers"]
    ]


def _documented_layers() -> list[set[str]]:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    table = text.split("## Packages and layers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [set(re.findall(r"`([a-z_]+)`", row.split("|")[1])) for row in rows]


def test_the_architecture_page_lists_the_layers_of_the_contract() -> None:
    assert _documented_layers() == _contract_layers()
