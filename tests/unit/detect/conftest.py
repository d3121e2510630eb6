"""Session fixtures: the whole SigmaHQ snapshot, compiled once and cached on disk.

The compiled set is cached by content hash in pytest's cache folder (`.pytest_cache`), so
only the first run after a rule, pipeline or engine change pays the ~10 s compile.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from casescope.detect.cache import load_or_compile
from casescope.detect.engine import CompiledRuleSet
from tests.unit.detect.support import cache_dir, snapshot_sources


@pytest.fixture(scope="session")
def snapshot(sigma_dir: Path, request: pytest.FixtureRequest) -> CompiledRuleSet:
    cache = cache_dir(request)
    return load_or_compile(snapshot_sources(sigma_dir), cache)
