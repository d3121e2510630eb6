"""On-disk cache of compiled rule sets, keyed by the rule set's content hash.

The key is the sha256 of the sorted (path, sha256 of the YAML file) pairs plus the engine
and pipeline versions and a fingerprint of the engine's source, so any edited, added or
removed rule file, a pySigma or pipeline upgrade, or any engine change gives a new key. A
cache file that cannot be read (truncated, foreign) is logged and rebuilt, never trusted.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import pickle
from collections.abc import Iterable
from pathlib import Path

from casescope.detect.engine import CompiledRuleSet, compile_rules, version_salt
from casescope.detect.load import iter_documents, load_rules

logger = logging.getLogger(__name__)

_NOT_ENGINE = {"ruleset.py"}  # rule storage in the DB, not the compiled form


@functools.cache
def code_fingerprint() -> str:
    """sha256 of the engine's own source: a compiled set is only ever loaded by the code
    that wrote it, even when a change forgot to bump `ENGINE_VERSION`."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.name not in _NOT_ENGINE:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ruleset_hash(files: Iterable[tuple[str, str]]) -> str:
    """Content hash of a rule set from its (path, sha256 of the file) pairs."""
    digest = hashlib.sha256(f"{version_salt()}\n{code_fingerprint()}".encode())
    for path, sha in sorted(files):
        digest.update(f"{path}\0{sha}\n".encode())
    return digest.hexdigest()[:32]


def _sources(source: Path | Iterable[Path]) -> list[Path]:
    return [source] if isinstance(source, Path) else list(source)


def source_hash(source: Path | Iterable[Path]) -> str:
    """Content hash of the rule files under one or more folders or zips."""
    sources = _sources(source)
    files = []
    for root in sources:
        prefix = f"{root.name}/" if len(sources) > 1 else ""
        for path, data in iter_documents(root):
            files.append((prefix + path, hashlib.sha256(data).hexdigest()))
    return ruleset_hash(files)


def cache_path(cache_dir: Path, content_hash: str) -> Path:
    return cache_dir / f"sigma-{content_hash}.pkl"


def load_cached(path: Path) -> CompiledRuleSet | None:
    """The compiled set at `path`, or None when it is missing or unreadable."""
    try:
        return CompiledRuleSet.load(path)
    except FileNotFoundError:
        return None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as exc:
        logger.warning("ignoring unreadable rule cache %s: %s", path, exc)
        return None


def load_or_compile(source: Path | Iterable[Path], cache_dir: Path) -> CompiledRuleSet:
    """The compiled rule set of `source`, from the cache when its content hash is there."""
    sources = _sources(source)
    content_hash = source_hash(sources)
    path = cache_path(cache_dir, content_hash)
    cached = load_cached(path)
    if cached is not None:
        logger.info("loaded %d compiled rules from %s", len(cached.rules), path)
        return cached
    ruleset = compile_rules(load_rules(sources))
    ruleset.hash = content_hash
    ruleset.save(path)
    logger.info("compiled %d rules into %s", len(ruleset.rules), path)
    return ruleset
