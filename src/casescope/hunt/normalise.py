"""Turn what an analyst typed into an `Ioc`: strip, refang, validate, infer the type."""

from __future__ import annotations

import ipaddress
import re

from casescope.hunt.checks import CHECKS, HIVES
from casescope.hunt.ioc import HASH_LENGTHS, Ioc, IocError, IocType, coerce_type
from casescope.hunt.refang import refang

#: Extensions that make `name.ext` a file name rather than a domain when the type is inferred
#: (`.zip`, `.mov` are also TLDs; `.com` is deliberately absent: `evil.com` is a domain).
_EXTENSIONS = (
    "exe dll sys drv ocx cpl scr bat cmd ps1 psm1 psd1 vbs vbe js jse wsf wsh hta lnk msi msp "
    "jar py pyc sh elf bin dat tmp log txt csv doc docx docm xls xlsx xlsm ppt pptx pptm pdf rtf "
    "zip rar 7z gz tgz tar iso img vhd vhdx cab chm inf reg one ini xml json evtx dmp"
)
FILE_EXTENSIONS = frozenset(_EXTENSIONS.split())

_HASH = re.compile(r"[0-9a-fA-F]+")
#: Four dotted numbers (and a prefix): meant as an IPv4 address, so one that is not valid
#: (`999.1.1.1`) is a typo to report, not a text to hunt for silently.
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,3})?")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_SID = re.compile(r"s-1-[0-9]+(?:-[0-9]+)+", re.IGNORECASE)
_EMAIL = re.compile(r"[^\s@]+@[a-z0-9_-]+(?:\.[a-z0-9_-]+)+", re.IGNORECASE)
_DOMAIN = re.compile(r"(?:[\w-]+\.)+([^\W\d_][\w-]*)\.?")
_REGISTRY = re.compile(
    r"(?:computer\\)?(?:" + "|".join(HIVES) + r"|\\registry\\(?:machine|user))(?:\\|$)",
    re.IGNORECASE,
)


def infer_type(value: str) -> IocType:
    """Guess an indicator's type from its text (docs/ioc.md, "Type inference")."""
    value = value.strip()
    fanged = refang(value)
    if _HASH.fullmatch(value):
        for ioc_type, length in HASH_LENGTHS.items():
            if len(value) == length:
                return ioc_type
    if _is_ip(fanged.strip("[]")):
        return IocType.IP
    if "/" in fanged and _is_cidr(fanged):
        return IocType.CIDR
    if _DOTTED_QUAD.fullmatch(fanged):
        raise IocError(
            f"{value!r} looks like an IPv4 address or network but is not one (each part "
            "0-255, a prefix 0-32); correct it, or give its type (e.g. string) to hunt it as "
            "it is"
        )
    if _URL.match(fanged):
        return IocType.URL
    if _REGISTRY.match(value):
        return IocType.REGISTRY
    if _SID.fullmatch(value):
        return IocType.SID
    if _EMAIL.fullmatch(fanged):
        return IocType.EMAIL
    if "\\" in value or "/" in value:
        return IocType.FILEPATH
    return _infer_name(value, fanged)


def _infer_name(value: str, fanged: str) -> IocType:
    """A dotted name: a file name when its last part is a known file extension, else a domain."""
    match = _DOMAIN.fullmatch(fanged)
    if match and match.group(1).lower() in FILE_EXTENSIONS and fanged == value:
        return IocType.FILENAME
    if match:
        return IocType.DOMAIN
    return IocType.STRING


def normalise(value: str, ioc_type: IocType | str | None = None, comment: str | None = None) -> Ioc:
    """Validate and normalise one indicator; infer its type when `ioc_type` is None.

    Raises `IocError` with a message naming the value and the reason when it cannot be used.
    """
    stripped = value.strip()
    if not stripped:
        raise IocError("empty indicator value")
    resolved = coerce_type(ioc_type) if ioc_type is not None else infer_type(stripped)
    if resolved is None:  # "hash": the length says which
        resolved = infer_type(stripped)
        if resolved not in HASH_LENGTHS:
            raise IocError(f"{stripped!r} is not an MD5, SHA-1 or SHA-256 hash")
    normalised = CHECKS[resolved](stripped)
    return Ioc(type=resolved, value=value, normalised=normalised, comment=comment or None)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True
