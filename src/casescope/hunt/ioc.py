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


#: Other names for the types, as found in CSV exports (MISP, OpenCTI, vendor feeds).
TYPE_ALIASES = {
    "ipv4": IocType.IP,
    "ipv6": IocType.IP,
    "ip-src": IocType.IP,
    "ip-dst": IocType.IP,
    "ip_address": IocType.IP,
    "hostname": IocType.DOMAIN,
    "host": IocType.DOMAIN,
    "fqdn": IocType.DOMAIN,
    "uri": IocType.URL,
    "file": IocType.FILENAME,
    "file_name": IocType.FILENAME,
    "path": IocType.FILEPATH,
    "file_path": IocType.FILEPATH,
    "regkey": IocType.REGISTRY,
    "registry_key": IocType.REGISTRY,
    "user": IocType.USERNAME,
    "account": IocType.USERNAME,
    "mail": IocType.EMAIL,
    "email-src": IocType.EMAIL,
    "email-dst": IocType.EMAIL,
    "cmd": IocType.COMMAND,
    "cmdline": IocType.COMMAND,
    "commandline": IocType.COMMAND,
    "keyword": IocType.STRING,
    "text": IocType.STRING,
    "pattern": IocType.REGEX,
}
#: A type name meaning "some hash": the length decides which.
HASH_ALIAS = "hash"


def coerce_type(name: IocType | str) -> IocType | None:
    """The `IocType` a type name means (aliases allowed); None for `hash` (decided by length)."""
    if isinstance(name, IocType):
        return name
    key = name.strip().lower()
    if key == HASH_ALIAS:
        return None
    if key in TYPE_ALIASES:
        return TYPE_ALIASES[key]
    try:
        return IocType(key)
    except ValueError:
        known = ", ".join(t.value for t in IocType)
        raise IocError(f"unknown IOC type {name!r} (known: {known})") from None
