"""Documentation is part of the feature: every setting is documented in the README."""

from __future__ import annotations

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
