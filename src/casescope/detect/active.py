"""The compiled active rule set as a worker holds it, and which of its rules a file still
needs evaluated after a rule-set change (the rest of the file's results stay)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from casescope.detect.correlations import needed_fields
from casescope.detect.engine import CompiledRuleSet


@dataclass
class ActiveRules:
    """The compiled active set as a worker holds it."""

    hash: str
    ruleset: CompiledRuleSet
    row_ids: dict[str, int]  # compiled rule id (`<rule set>:<Sigma id>`) -> rules.id
    _pending: dict[str, CompiledRuleSet] = field(default_factory=dict, repr=False)
    _kept: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def correlation_fields(self) -> dict[str, set[str]]:
        """Rule id -> fields its detections must carry for the set's correlation rules."""
        return needed_fields(self.ruleset.correlations)

    @property
    def manifest(self) -> dict[str, str]:
        """Rule id -> content hash of every rule in the set."""
        return {rule.id: rule.content_hash for rule in self.ruleset.rules}

    def unchanged_since(self, previous: Mapping[str, str] | None) -> frozenset[str]:
        """Ids of rules whose results under `previous` (a manifest) are still valid.

        Rules that correlation rules reference always run again: their detections must
        carry the fields the (possibly new) correlations group by."""
        if not previous:
            return frozenset()
        referenced = self.correlation_fields
        return frozenset(
            r.id
            for r in self.ruleset.rules
            if previous.get(r.id) == r.content_hash and r.id not in referenced
        )

    def kept_since(
        self, previous_hash: str | None, previous: Mapping[str, str] | None
    ) -> frozenset[str]:
        """`unchanged_since(previous)`, memoised by the previous set's hash (which names one
        manifest): a re-run over thousands of files compares the rules once, not per file."""
        if not previous_hash:
            return self.unchanged_since(previous)
        if previous_hash not in self._kept:
            self._kept[previous_hash] = self.unchanged_since(previous)
        return self._kept[previous_hash]

    def pending(self, previous_hash: str | None, keep: frozenset[str]) -> CompiledRuleSet:
        """The rules to evaluate for a file last evaluated with `previous_hash` (memoised)."""
        if not keep:
            return self.ruleset
        key = previous_hash or ""
        if key not in self._pending:
            todo = {rule.id for rule in self.ruleset.rules} - keep
            self._pending[key] = self.ruleset.subset(todo)
        return self._pending[key]
