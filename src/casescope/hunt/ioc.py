"""The IOC model: its types, one indicator, and the error every bad indicator raises."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from casescope.errors import CasescopeError


class IocType(StrEnum):
    """Every kind of indicator casescope hunts for (docs/ioc.md has the matching rules)."""

    IP = "ip"
    CIDR = "cidr"
    DOMAIN = "domain"
    URL = "url"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    FILENAME = "filename"
    FILEPATH = "filepath"
    REGISTRY = "registry"
    USERNAME = "username"
    SID = "sid"
    EMAIL = "email"
    COMMAND = "command"
    STRING = "string"
    REGEX = "regex"


#: Types matched as whole tokens (not inside a longer token of the same kind).
TOKEN_TYPES = frozenset(
    {
        IocType.IP,
        IocType.DOMAIN,
        IocType.MD5,
        IocType.SHA1,
        IocType.SHA256,
        IocType.EMAIL,
        IocType.USERNAME,
        IocType.SID,
        IocType.FILENAME,
    }
)

#: Hash types and the number of hex digits each has.
HASH_LENGTHS = {IocType.MD5: 32, IocType.SHA1: 40, IocType.SHA256: 64}


class IocError(CasescopeError):
    """An indicator that cannot be used: its message says which value and why."""


@dataclass(frozen=True)
class Ioc:
    """One indicator.

    `value` is what the analyst entered; `normalised` is what is matched (refanged, stripped,
    lower-cased except for regexes). `id` is the metadata-DB id; compiling needs one.
    """

    type: IocType
    value: str
    normalised: str
    comment: str | None = None
    id: int | None = None
