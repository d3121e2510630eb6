"""Load Sigma rules from directory trees or zips with pySigma, keeping every failure.

YAML is parsed with libyaml's CSafeLoader and handed to `SigmaCollection.from_dicts` with
`collect_errors=True` (libyaml parses in C where pySigma's own loader parses YAML in pure
Python, most of a cold load; `bench/sigma.py` times it). A file that is not YAML, or a rule
pySigma rejects, is kept as a `RuleFailure` with its path and reason.
Correlation rules are kept as `LoadedCorrelation`s with their parsed definition; their
references to other rules are resolved by `correlate.py` against the whole load. YAML files
that are not rules at all (no `detection`, `correlation` or `filter`, and no `title` +
`logsource`) are listed in `ignored`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from casescope.collector import paused_gc
from casescope.detect.normalise import Normalised, normalise, normalise_correlation

logger = logging.getLogger(__name__)

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - libyaml is in the PyYAML wheels we pin
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

_BOOL = "tag:yaml.org,2002:bool"


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """libyaml's safe loader with YAML 1.2 booleans: only true/false, so a rule's `no` or
    `on` stays the text it means (`CommandLine|contains|all: [recoveryenabled, no]`)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

YAML_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class RuleFailure:
    path: str
    reason: str


@dataclass
class LoadedRule:
    rule: SigmaRule
    path: str
    sha256: str  # of the YAML file
    text: str = ""  # the YAML itself, so the rule can be stored and compiled elsewhere
    index: int = 0  # position of the rule among the file's rules
    warnings: list[str] = field(default_factory=list)  # what `normalise` had to fix
    written_id: str | None = None  # the rule's id as written, when it is not a UUID
    tags: list[str] = field(default_factory=list)  # as written (pySigma's lack bare ones)
    details: str = ""  # Hayabusa's `details` template (`details.render_details`)
    source: str = ""  # the rule set it belongs to (qualifies its id, see `uid`)
    aliases: dict[str, str] = field(default_factory=dict)  # field alias -> eventkey
    #: run as written: the detection names its log source (Hayabusa's rules carry Channel
    #: and EventID); `logsource` is informative and no log-source pipeline applies
    as_written: bool = False

    @property
    def sigma_id(self) -> str:
        """The rule's id as its authors wrote it (its path when it has none)."""
        return self.written_id or str(self.rule.id or self.path)

    @property
    def uid(self) -> str:
        """The compiled rule's id: the Sigma id, qualified by the rule set when it has one,
        so two sets holding the same rule each get their own hits."""
        return f"{self.source}:{self.sigma_id}" if self.source else self.sigma_id


@dataclass
class LoadedCorrelation:
    path: str
    sha256: str
    definition: dict  # the YAML document as parsed
    rule: SigmaCorrelationRule | None = None  # None when pySigma rejected it (see error)
    error: str = ""
    text: str = ""  # the whole YAML file
    warnings: list[str] = field(default_factory=list)
    source: str = ""


@dataclass
class RuleLoad:
    rules: list[LoadedRule] = field(default_factory=list)
    correlations: list[LoadedCorrelation] = field(default_factory=list)
    failures: list[RuleFailure] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def extend(self, other: RuleLoad) -> None:
        """Add another load's rules, correlations, failures and ignored files."""
        self.rules += other.rules
        self.correlations += other.correlations
        self.failures += other.failures
        self.ignored += other.ignored


def iter_documents(source: Path) -> Iterator[tuple[str, bytes]]:
    """(relative path, bytes) of every .yml/.yaml file in a folder tree or a zip, sorted."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.suffix.lower() in YAML_SUFFIXES and path.is_file():
                yield path.relative_to(source).as_posix(), path.read_bytes()
        return
    with zipfile.ZipFile(source) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if info.filename.lower().endswith(YAML_SUFFIXES) and not info.is_dir():
                yield info.filename, archive.read(info)


def _looks_like_rule(doc: dict) -> bool:
    return any(k in doc for k in ("detection", "correlation", "filter")) or (
        "title" in doc and "logsource" in doc
    )


def _add_correlations(path: str, digest: str, docs: list[dict], text: str, load: RuleLoad) -> None:
    for doc in docs:
        definition, warnings = normalise_correlation(doc)
        try:
            rule = SigmaCorrelationRule.from_dict(definition, collect_errors=True)
            error = "; ".join(str(e) for e in rule.errors)
        except (SigmaError, ValueError, TypeError, KeyError) as exc:
            rule, error = None, f"{type(exc).__name__}: {exc}"
        loaded = LoadedCorrelation(path, digest, definition, rule, error, text, warnings)
        load.correlations.append(loaded)
        if error:
            load.failures.append(RuleFailure(path, f"correlation rule: {error}"))


def _parse(data: bytes, path: str, load: RuleLoad) -> list[dict] | None:
    """The file's YAML documents, or None (its failure recorded, or listed as ignored)."""
    try:
        docs = [d for d in yaml.load_all(data, Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:
        load.failures.append(RuleFailure(path, f"not valid YAML: {exc}"))
        return None
    if not docs or not all(isinstance(d, dict) for d in docs):
        load.failures.append(RuleFailure(path, "not a Sigma rule (no mapping)"))
        return None
    if not any(_looks_like_rule(d) for d in docs):
        load.ignored.append(path)
        return None
    return docs


def _extras(loaded: LoadedRule, norm: Normalised | None) -> LoadedRule:
    if norm is not None:
        loaded.warnings, loaded.written_id, loaded.tags = norm.warnings, norm.uid, norm.tags
        details = norm.rule.get("details")
        loaded.details = details if isinstance(details, str) else ""
    if not loaded.tags:
        loaded.tags = [str(t) for t in loaded.rule.tags]
    return loaded


def load_document(path: str, data: bytes, load: RuleLoad) -> None:
    """Add one YAML file's rules (or its failure) to `load`."""
    docs = _parse(data, path, load)
    if docs is None:
        return
    digest = hashlib.sha256(data).hexdigest()
    text = data.decode("utf-8", "replace")
    plain = [d for d in docs if "correlation" not in d]
    if any("filter" in d for d in plain):
        _add_correlations(path, digest, [d for d in docs if "correlation" in d], text, load)
        load.failures.append(RuleFailure(path, "Sigma filters are not supported"))
        return
    norms = [normalise(d) for d in plain]
    converted = [n.correlation for n in norms if n.correlation is not None]
    _add_correlations(path, digest, [d for d in docs if "correlation" in d] + converted, text, load)
    if not plain:
        return
    try:
        collection = SigmaCollection.from_dicts([n.rule for n in norms], collect_errors=True)
    except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as exc:
        load.failures.append(RuleFailure(path, f"{type(exc).__name__}: {exc}"))
        return
    rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
    by_position = len(rules) == len(norms)  # no `action:` documents reshaped the file
    for index, rule in enumerate(rules):
        if rule.errors:
            reason = "; ".join(str(e) for e in rule.errors)
            load.failures.append(RuleFailure(path, reason))
        else:
            loaded = LoadedRule(rule, path, digest, text, index)
            load.rules.append(_extras(loaded, norms[index] if by_position else None))
    if not collection.rules and collection.errors:
        reason = "; ".join(str(e) for e in collection.errors)
        load.failures.append(RuleFailure(path, reason))


def load_rules(source: Path | Iterable[Path]) -> RuleLoad:
    """Every Sigma rule under `source` (a folder or a .zip, or several), with every failure.

    With several sources, each path is prefixed with its source's name (`rules/…`,
    `rules-emerging-threats/…`) so paths stay unique.
    """
    sources = [source] if isinstance(source, Path) else list(source)
    load = RuleLoad()
    with paused_gc():
        for root in sources:
            prefix = f"{root.name}/" if len(sources) > 1 else ""
            for path, data in iter_documents(root):
                load_document(prefix + path, data, load)
    logger.info(
        "loaded %d rules, %d failures, %d correlation rules, %d other files from %s",
        len(load.rules),
        len(load.failures),
        len(load.correlations),
        len(load.ignored),
        ", ".join(str(s) for s in sources),
    )
    return load
