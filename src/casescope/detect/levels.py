"""Sigma's rule levels and statuses as the values casescope stores and takes from users.

pySigma models them as plain enums (`sigma.rule.SigmaLevel`); rules rows keep their names as
text, and filters (`--level high`, `?level=high`) are checked against these at the edge, so an
unknown level is a clear error, never a lookup that fails deep inside.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from casescope.errors import CasescopeError

_Choice = TypeVar("_Choice", bound=StrEnum)


def _parse(kind: type[_Choice], text: str, what: str) -> _Choice:
    """`text` as a member of `kind`, in any case and spacing; a clear error naming them all."""
    try:
        return kind(text.strip().lower())
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise CasescopeError(f"{what} must be one of {choices}, not {text[:40]!r}") from None


class SigmaLevel(StrEnum):
    """In rising order of severity."""

    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @classmethod
    def parse(cls, text: str) -> SigmaLevel:
        return _parse(cls, text, "level")

    @property
    def rank(self) -> int:
        """0 for informational up to 4 for critical."""
        return list(SigmaLevel).index(self)

    def and_above(self) -> tuple[SigmaLevel, ...]:
        """This level and every more severe one (a "minimum level" filter)."""
        levels = list(SigmaLevel)
        return tuple(levels[levels.index(self) :])


class SigmaStatus(StrEnum):
    """Most trusted first."""

    STABLE = "stable"
    TEST = "test"
    EXPERIMENTAL = "experimental"
    DEPRECATED = "deprecated"
    UNSUPPORTED = "unsupported"

    @classmethod
    def parse(cls, text: str) -> SigmaStatus:
        return _parse(cls, text, "status")


def level_rank(text: str) -> int:
    """The rank of a stored level (`SigmaLevel.rank`); -1 for none or an unknown one."""
    try:
        return SigmaLevel(text.lower()).rank
    except ValueError:
        return -1
