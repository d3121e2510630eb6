"""The compiled-set cache: keyed by content, rebuilt when rules change or the file is bad."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from casescope.detect.cache import cache_path, load_or_compile, source_hash
from tests.unit.detect.support import rule_text

RULE = rule_text("  sel: {Image|endswith: '\\a.exe'}\n  condition: sel")


def test_cache_is_keyed_by_content(tmp_path: Path) -> None:
    rules, cache = tmp_path / "rules", tmp_path / "cache"
    rules.mkdir()
    (rules / "a.yml").write_text(RULE)
    first = load_or_compile(rules, cache)
    assert first.hash == source_hash(rules)
    assert cache_path(cache, first.hash).exists()
    again = load_or_compile(rules, cache)
    assert [r.content_hash for r in again.rules] == [r.content_hash for r in first.rules]
    (rules / "a.yml").write_text(RULE.replace("a.exe", "b.exe"))
    changed = load_or_compile(rules, cache)
    assert changed.hash != first.hash
    assert len(list(cache.glob("sigma-*.pkl"))) == 2
    (rules / "b.yml").write_text(RULE.replace("a.exe", "c.exe"))
    assert source_hash(rules) != changed.hash


def test_an_unreadable_cache_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules, cache = tmp_path / "rules", tmp_path / "cache"
    rules.mkdir()
    (rules / "a.yml").write_text(RULE)
    path = cache_path(cache, source_hash(rules))
    cache.mkdir()
    path.write_bytes(b"\x80\x05truncated")
    with caplog.at_level(logging.WARNING):
        ruleset = load_or_compile(rules, cache)
    assert len(ruleset.rules) == 1
    assert "unreadable rule cache" in caplog.text
    assert load_or_compile(rules, cache).hash == ruleset.hash
