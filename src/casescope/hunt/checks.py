"""Per-type validation and normalisation of one stripped indicator value.

Each function takes the stripped value and returns the normalised form, or raises `IocError`
saying why the value cannot be an indicator of that type. Every function is idempotent.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import polars as pl

from casescope.hunt.ioc import HASH_LENGTHS, IocError, IocType
from casescope.hunt.refang import refang

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/?#]+")
_SID = re.compile(r"s-1-[0-9]+(?:-[0-9]+)+")
_HEX = re.compile(r"[0-9a-f]+")
_FLAG_GROUP = re.compile(r"\(\?([A-Za-z-]*)[:)]")
_RE2_FLAGS = set("imsU-")
#: Rust `regex` syntax RE2 rejects: word-boundary assertions `\<`, `\>`, `\b{...}`.
_RUST_ONLY = re.compile(r"(?<!\\)(?:\\\\)*\\(?:[<>]|[bB]\{)")

#: Registry hive spellings and the short form they normalise to.
HIVES = {
    "hkey_local_machine": "hklm",
    "hkey_current_user": "hkcu",
    "hkey_classes_root": "hkcr",
    "hkey_users": "hku",
    "hkey_current_config": "hkcc",
    "hklm": "hklm",
    "hkcu": "hkcu",
    "hkcr": "hkcr",
    "hku": "hku",
    "hkcc": "hkcc",
}
_TRAILING_SEPARATORS = re.compile(r"[\\\s]+$")
_KERNEL_HIVES = {"\\registry\\machine": "hklm", "\\registry\\user": "hku"}


def check_ip(value: str) -> str:
    """An IPv4 or IPv6 address, in its canonical (for IPv6: compressed) lower-case form."""
    value = refang(value).strip("[]")
    if "%" in value:
        raise IocError(f"{value!r}: IPv6 zone ids (%...) are not supported in an IP indicator")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise IocError(f"{value!r} is not a valid IPv4 or IPv6 address") from None


def check_cidr(value: str) -> str:
    """An IPv4 network such as `10.0.0.0/8` (host bits are dropped: `10.1.2.3/8` → `10.0.0.0/8`)."""
    value = refang(value)
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise IocError(f"{value!r} is not a valid CIDR range (e.g. 10.0.0.0/8)") from None
    if network.version != 4:
        raise IocError(f"{value!r}: only IPv4 CIDR ranges are supported")
    return str(network)


def check_domain(value: str) -> str:
    """A host or domain name: lower-case, no leading `*.` or trailing dot, IDNA (punycode)."""
    value = refang(value).lower().strip(".")
    value = value.removeprefix("*.")
    if "/" in value or ":" in value:
        raise IocError(f"{value!r} is not a domain (it looks like a URL: use type url)")
    if not value.isascii():
        try:
            value = value.encode("idna").decode("ascii")
        except UnicodeError:
            raise IocError(f"{value!r} is not a valid internationalised domain name") from None
    labels = value.split(".")
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise IocError(f"{value!r} is not a valid domain name")
    if _is_ip(value):
        raise IocError(f"{value!r} is an IP address: use type ip")
    return value


def check_url(value: str) -> str:
    """A URL with a scheme and a host, refanged and lower-cased."""
    value = refang(value).lower()
    if not _URL.match(value) or any(ch.isspace() for ch in value):
        raise IocError(f"{value!r} is not a URL (expected scheme://host[/path], no spaces)")
    return value


def hash_check(ioc_type: IocType) -> Callable[[str], str]:
    """The check for one hash type: hexadecimal digits of exactly the type's length."""
    length = HASH_LENGTHS[ioc_type]

    def check(value: str) -> str:
        value = value.lower()
        if not _HEX.fullmatch(value):
            raise IocError(f"{value!r} is not a valid {ioc_type} hash: it has non-hex characters")
        if len(value) != length:
            raise IocError(
                f"{value!r} is not a valid {ioc_type} hash: "
                f"expected {length} hex digits, got {len(value)}"
            )
        return value

    return check


def check_filename(value: str) -> str:
    """A file name without directories, lower-cased."""
    if "\\" in value or "/" in value:
        raise IocError(f"{value!r} contains a path separator: use type filepath")
    return value.lower()


def check_registry(value: str) -> str:
    """A registry key or value path; hive names are shortened (`HKEY_LOCAL_MACHINE` → `hklm`)."""
    value = _TRAILING_SEPARATORS.sub("", value.lower())
    while value.startswith("computer\\"):  # regedit's address bar
        value = value.removeprefix("computer\\")
    for kernel, short in _KERNEL_HIVES.items():
        if value == kernel or value.startswith(kernel + "\\"):
            value = short + value[len(kernel) :]
    head, sep, rest = value.partition("\\")
    if head in HIVES:
        if not rest:
            raise IocError(f"{value!r} is a whole hive: a registry IOC needs a key below it")
        value = HIVES[head] + sep + rest
    if not value:
        raise IocError("empty registry path")
    return value


def check_sid(value: str) -> str:
    """A Windows security identifier such as `S-1-5-21-…-1001`, lower-cased."""
    value = value.lower()
    if not _SID.fullmatch(value):
        raise IocError(f"{value!r} is not a Windows SID (expected S-1-<authority>-<sub>...)")
    return value


def check_email(value: str) -> str:
    """An e-mail address, refanged (`[at]`, `[.]`) and lower-cased."""
    value = refang(value).lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or "@" in local or any(ch.isspace() for ch in local):
        raise IocError(f"{value!r} is not an e-mail address")
    return f"{local}@{check_domain(domain)}"


def check_command(value: str) -> str:
    """A command-line fragment: lower-cased, runs of white space as one space."""
    return " ".join(value.lower().split())


def check_text(value: str) -> str:
    """A value matched as case-insensitive text (file path, user name, free string)."""
    return value.lower()


def check_regex(value: str) -> str:
    """A regular expression in the subset shared by RE2 (ClickHouse) and Rust `regex`."""
    for flags in _FLAG_GROUP.findall(value):
        if not set(flags) <= _RE2_FLAGS:
            raise IocError(f"regex {value!r}: only the flags i, m, s and U are supported")
    if _RUST_ONLY.search(value):
        raise IocError(f"regex {value!r}: \\<, \\> and \\b{{...}} are not supported (use \\b)")
    try:
        pl.Series([""], dtype=pl.String).str.contains(value)
    except pl.exceptions.ComputeError as exc:
        reason = " ".join(str(exc).split("This error occurred")[0].split())
        raise IocError(f"regex {value!r} does not compile: {reason}") from None
    return value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


CHECKS: dict[IocType, Callable[[str], str]] = {
    IocType.IP: check_ip,
    IocType.CIDR: check_cidr,
    IocType.DOMAIN: check_domain,
    IocType.URL: check_url,
    IocType.MD5: hash_check(IocType.MD5),
    IocType.SHA1: hash_check(IocType.SHA1),
    IocType.SHA256: hash_check(IocType.SHA256),
    IocType.FILENAME: check_filename,
    IocType.FILEPATH: check_text,
    IocType.REGISTRY: check_registry,
    IocType.USERNAME: check_text,
    IocType.SID: check_sid,
    IocType.EMAIL: check_email,
    IocType.COMMAND: check_command,
    IocType.STRING: check_text,
    IocType.REGEX: check_regex,
}
