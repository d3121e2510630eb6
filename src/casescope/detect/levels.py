"""Sigma's rule levels and statuses as the values casescope stores and takes from users.

pySigma models them as plain enums (`sigma.rule.SigmaLevel`); rules rows keep their names as
text, and filters (`--level high`, `?level=high`) are checked against these at the edge, so an
unknown level is a clear error, never a lookup that fails deep inside.
"""

from __future__ import annotations

from enum import StrEnum

from casescope.errors import CasescopeError


class SigmaLevel(StrEnum):
    """In rising order of severity."""

    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @classmethod
    def parse(cls, text: str) -> SigmaLevel:
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(level.value for level in cls)
            raise CasescopeError(f"level must be one of {choices}, not {text[:40]!r}") from None

    def and_above(self) -> tuple[SigmaLevel, ...]:
        """This level and every more severe one (a "minimum level" filter)."""
        levels = list(SigmaLevel)
        return tuple(levels[levels.index(self) :])


class SigmaStatus(StrEnum):
    """In rising order of maturity."""

    UNSUPPORTED = "unsupported"
    DEPRECATED = "deprecated"
    EXPERIMENTAL = "experimental"
    TEST = "test"
    STABLE = "stable"

    @classmethod
    def parse(cls, text: str) -> SigmaStatus:
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(status.value for status in cls)
            raise CasescopeError(f"status must be one of {choices}, not {text[:40]!r}") from None
