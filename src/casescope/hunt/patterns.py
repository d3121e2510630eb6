"""Each IOC type's matching rule, compiled once into data both engines execute.

An `IocPattern` is what the batch matcher (Polars, Rust `regex`) and the index hunt
(ClickHouse, RE2) share, so that both find exactly the same values:

* `literal`: lower-case text every matching value contains (cheap prefilter; Aho-Corasick in
  Polars, `position` in ClickHouse). None when no such text exists (regexes).
* `regex`: the confirmation, written in the syntax RE2 and Rust `regex` share (no
  look-around): token boundaries are spelled as `(?:^|[^class])` groups. Applied to the
  lower-cased value, or to the value as it is when `on_original` (regex IOCs).
* `cidr`: an inclusive range of IPv4 addresses as integers, tested on the dotted-quad
  candidates found in the value.
* `tokens`: whole tokens (ClickHouse `splitByNonAlpha`) every match contains, for
  `hasToken` on the event's search text so the index's text index can skip granules.

docs/ioc.md describes the rules for analysts.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import NamedTuple

from casescope.hunt.ioc import HASH_LENGTHS, Ioc, IocError, IocType
from casescope.parse.schema import INDEXED_TOKEN_CHARS

#: Characters a regex treats specially outside a class: escaped in literals.
_META = frozenset("\\.+*?()|[]{}^$")

#: A run of digits and dots: where IPv4 candidates are looked for, in both engines.
IPV4_RUN = r"[0-9.]+"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: A dotted quad in canonical form (no leading zeros), the whole candidate.
IPV4_CANDIDATE = rf"^{_OCTET}(?:\.{_OCTET}){{3}}$"

#: Token classes: a token type's value must not touch a character of its class (docs/ioc.md).
_IPV4_CLASS = "0-9."
_IPV6_CLASS = "0-9a-f:."
_DOMAIN_CLASS = "a-z0-9_.-"
_HASH_CLASS = "0-9a-f"
_EMAIL_LOCAL_CLASS = "a-z0-9._%+-"
_USER_CLASS = "a-z0-9_.$-"
_SID_CLASS = "a-z0-9-"
_FILENAME_BEFORE = r"[\\/ \t\n\v\f\r" + "\"'`" + r"=:,;|&(<>*?]"
_FILENAME_AFTER = r"[\\/ \t\n\v\f\r" + "\"'`" + r":,;|&)<>*?]"
_SPACES = r"[ \t\n\v\f\r]+"

#: Every spelling of a hive (after `check_registry` shortened it) as a regex alternative.
_HIVE_FORMS = {
    "hklm": r"(?:hklm|hkey_local_machine|\\registry\\machine)",
    "hkcu": r"(?:hkcu|hkey_current_user|(?:hku|hkey_users|\\registry\\user)\\[^\\]+)",
    "hkcr": r"(?:hkcr|hkey_classes_root|(?:hklm|hkey_local_machine|\\registry\\machine)"
    r"\\software\\classes)",
    "hku": r"(?:hku|hkey_users|\\registry\\user)",
    "hkcc": r"(?:hkcc|hkey_current_config)",
}
#: Put before every regex IOC: case-insensitive, and `.` not matching a newline (RE2's and
#: Rust's default, but not ClickHouse's, whose `match` sets dot-matches-newline).
REGEX_DEFAULT_FLAGS = "(?i-s)"
_MAX_TOKENS = 2
_MIN_TOKEN = 3
_PUNCT = r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]"
_INNER_TOKEN = re.compile(f"(?<={_PUNCT})([a-z0-9]+)(?={_PUNCT})")


class _Rule(NamedTuple):
    """What a type's builder decides; `compile_pattern` adds the id, type and tokens."""

    literal: str | None
    regex: str | None = None
    on_original: bool = False
    cidr: tuple[int, int] | None = None


@dataclass(frozen=True)
class IocPattern:
    """One IOC compiled for matching (see the module docstring for the fields)."""

    ioc_id: int
    ioc_type: IocType
    literal: str | None
    regex: str | None = None
    on_original: bool = False
    cidr: tuple[int, int] | None = None
    tokens: tuple[str, ...] = ()


def escape(text: str) -> str:
    """`text` as a regex matching exactly it (only the metacharacters are escaped)."""
    return "".join("\\" + ch if ch in _META else ch for ch in text)


def token_regex(body: str, klass: str, trim_dots: bool = False) -> str:
    """`body` not touching any character of `klass`; with `trim_dots`, dots may sit between."""
    dots = r"\.*" if trim_dots else ""
    return f"(?:^|[^{klass}]){dots}{body}{dots}(?:$|[^{klass}])"


def compile_pattern(ioc: Ioc) -> IocPattern:
    """The matching rule of one IOC (it must carry an id)."""
    if ioc.id is None:
        raise IocError(f"IOC {ioc.value!r} has no id: store it before compiling")
    rule = _BUILDERS[ioc.type](ioc)
    return IocPattern(
        ioc_id=ioc.id,
        ioc_type=ioc.type,
        literal=rule.literal,
        regex=rule.regex,
        on_original=rule.on_original,
        cidr=rule.cidr,
        tokens=inner_tokens(rule.literal) if rule.literal else (),
    )


def inner_tokens(literal: str) -> tuple[str, ...]:
    """The longest alphanumeric runs of `literal` bounded on both sides by ASCII punctuation.

    Wherever `literal` occurs, these occur as whole tokens of ClickHouse's `splitByNonAlpha`
    (which treats bytes of non-ASCII characters as part of tokens).
    """
    found = {
        token
        for m in _INNER_TOKEN.finditer(literal)
        if _MIN_TOKEN <= len(token := m.group(1)) < INDEXED_TOKEN_CHARS
    }
    return tuple(sorted(found, key=lambda t: (-len(t), t))[:_MAX_TOKENS])


def _ip(ioc: Ioc) -> _Rule:
    address = ipaddress.ip_address(ioc.normalised)
    if isinstance(address, ipaddress.IPv4Address):
        body = escape(str(address))
        return _Rule(str(address), token_regex(body, _IPV4_CLASS, trim_dots=True))
    body = "(?:" + "|".join(ipv6_forms(address)) + ")"
    groups = [g.lstrip("0") for g in address.exploded.split(":")]
    literal = max(groups, key=len) or ":"
    return _Rule(literal, token_regex(body, _IPV6_CLASS, trim_dots=True))


def ipv6_forms(address: ipaddress.IPv6Address) -> list[str]:
    """Regexes for every textual form of `address`: full, or one run of zero groups as `::`.

    Groups may carry leading zeros (`0db8`); forms ending in a dotted quad are not included.
    """
    groups = [int(g, 16) for g in address.exploded.split(":")]
    written = [_group_regex(g) for g in groups]
    forms = {":".join(written)}
    for start in range(8):
        for end in range(start + 1, 9):
            if any(groups[start:end]):
                break
            forms.add(":".join(written[:start]) + "::" + ":".join(written[end:]))
    return sorted(forms, key=lambda f: (len(f), f))


def _group_regex(group: int) -> str:
    if group == 0:
        return "0{1,4}"
    digits = f"{group:x}"
    return digits if len(digits) == 4 else f"0{{0,{4 - len(digits)}}}{digits}"


def _cidr(ioc: Ioc) -> _Rule:
    network = ipaddress.IPv4Network(ioc.normalised)
    fixed = network.prefixlen // 8
    octets = str(network.network_address).split(".")[:fixed]
    literal = ".".join(octets) + ("." if fixed < 4 else "") if fixed else "."
    bounds = (int(network.network_address), int(network.broadcast_address))
    return _Rule(literal, cidr=bounds)


def _domain(ioc: Ioc) -> _Rule:
    name = ioc.normalised
    regex = (
        f"(?:^|[^{_DOMAIN_CLASS}])(?:[{_DOMAIN_CLASS}]*\\.)?{escape(name)}"
        f"\\.*(?:$|[^{_DOMAIN_CLASS}])"
    )
    return _Rule(name, regex)


def _hash(ioc: Ioc) -> _Rule:
    return _Rule(ioc.normalised, token_regex(escape(ioc.normalised), _HASH_CLASS))


def _email(ioc: Ioc) -> _Rule:
    regex = f"(?:^|[^{_EMAIL_LOCAL_CLASS}])\\.*{escape(ioc.normalised)}\\.*(?:$|[^{_DOMAIN_CLASS}])"
    return _Rule(ioc.normalised, regex)


def _username(ioc: Ioc) -> _Rule:
    regex = token_regex(escape(ioc.normalised), _USER_CLASS, trim_dots=True)
    return _Rule(ioc.normalised, regex)


def _sid(ioc: Ioc) -> _Rule:
    return _Rule(ioc.normalised, token_regex(escape(ioc.normalised), _SID_CLASS))


def _filename(ioc: Ioc) -> _Rule:
    regex = f"(?:^|{_FILENAME_BEFORE}){escape(ioc.normalised)}(?:$|{_FILENAME_AFTER})"
    return _Rule(ioc.normalised, regex)


def _substring(ioc: Ioc) -> _Rule:
    return _Rule(ioc.normalised, None)


def _command(ioc: Ioc) -> _Rule:
    parts = ioc.normalised.split(" ")
    if len(parts) == 1:
        return _Rule(ioc.normalised, None)
    return _Rule(max(parts, key=len), _SPACES.join(escape(p) for p in parts))


def _registry(ioc: Ioc) -> _Rule:
    head, sep, rest = ioc.normalised.partition("\\")
    if head not in _HIVE_FORMS:
        return _Rule(ioc.normalised, None)
    regex = _HIVE_FORMS[head] + escape(sep + rest)
    return _Rule(sep + rest or None, regex)


def _regex(ioc: Ioc) -> _Rule:
    return _Rule(None, regex=REGEX_DEFAULT_FLAGS + ioc.normalised, on_original=True)


_BUILDERS = {
    IocType.IP: _ip,
    IocType.CIDR: _cidr,
    IocType.DOMAIN: _domain,
    IocType.URL: _substring,
    IocType.FILENAME: _filename,
    IocType.FILEPATH: _substring,
    IocType.REGISTRY: _registry,
    IocType.USERNAME: _username,
    IocType.SID: _sid,
    IocType.EMAIL: _email,
    IocType.COMMAND: _command,
    IocType.STRING: _substring,
    IocType.REGEX: _regex,
    **dict.fromkeys(HASH_LENGTHS, _hash),
}
