"""Laws: normalise is idempotent; a token IOC finds an event holding exactly its value."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from casescope.hunt.ioc import Ioc, IocError, IocType
from casescope.hunt.matcher import compile_iocs
from casescope.hunt.normalise import normalise
from tests.unit.hunt.events import make_batch

_LABEL = r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
_DOMAIN = rf"({_LABEL}\.){{1,3}}[a-z]{{2,6}}"
_NAME_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\\/\"'`=:,;|&()<>*? "
)

#: Valid values of each type (as an analyst might type them: mixed case, defanged).
VALUES = {
    IocType.IP: st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str),
    IocType.CIDR: st.ip_addresses(v=4).flatmap(
        lambda a: st.integers(0, 32).map(lambda n: f"{a}/{n}")
    ),
    IocType.DOMAIN: st.from_regex(_DOMAIN, fullmatch=True).map(lambda d: d.replace(".", "[.]")),
    IocType.URL: st.from_regex(
        rf"hxxps?://{_DOMAIN}(/[A-Za-z0-9._~%-]{{0,12}}){{0,3}}", fullmatch=True
    ),
    IocType.MD5: st.from_regex(r"[0-9a-fA-F]{32}", fullmatch=True),
    IocType.SHA1: st.from_regex(r"[0-9a-fA-F]{40}", fullmatch=True),
    IocType.SHA256: st.from_regex(r"[0-9a-fA-F]{64}", fullmatch=True),
    IocType.FILENAME: st.text(_NAME_CHARS, min_size=1, max_size=20),
    IocType.FILEPATH: st.text(min_size=1, max_size=30),
    IocType.REGISTRY: st.from_regex(
        r"(HKLM|HKEY_LOCAL_MACHINE|HKCU|hku|\\REGISTRY\\MACHINE|Software)"
        r"(\\[A-Za-z0-9 _.-]{1,8}){1,4}\\?",
        fullmatch=True,
    ),
    IocType.USERNAME: st.text(min_size=1, max_size=20),
    IocType.SID: st.from_regex(r"[sS]-1-[0-9]{1,2}(-[0-9]{1,10}){1,6}", fullmatch=True),
    IocType.EMAIL: st.from_regex(rf"[A-Za-z0-9._%+-]{{1,10}}@{_DOMAIN}", fullmatch=True),
    IocType.COMMAND: st.text(min_size=1, max_size=30),
    IocType.STRING: st.text(min_size=1, max_size=30),
}
TOKEN_TYPES = [
    IocType.IP,
    IocType.DOMAIN,
    IocType.MD5,
    IocType.SHA1,
    IocType.SHA256,
    IocType.EMAIL,
    IocType.USERNAME,
    IocType.SID,
    IocType.FILENAME,
]


def _valid(ioc_type: IocType, value: str) -> Ioc:
    try:
        return normalise(value, ioc_type)
    except IocError:
        assume(False)
        raise


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_normalise_is_idempotent(data: st.DataObject) -> None:
    ioc_type = data.draw(st.sampled_from(sorted(VALUES)))
    first = _valid(ioc_type, data.draw(VALUES[ioc_type]))
    again = normalise(first.normalised, ioc_type)
    assert (again.type, again.normalised) == (first.type, first.normalised)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([IocType.IP, IocType.MD5, IocType.SHA1, IocType.SHA256]), st.data())
def test_inferred_type_is_stable(ioc_type: IocType, data: st.DataObject) -> None:
    first = normalise(data.draw(VALUES[ioc_type]))
    assert first.type is ioc_type
    assert normalise(first.normalised).type is ioc_type


def _event_forms(ioc: Ioc) -> list[str]:
    """How the indicator may appear in an event: its normalised text, in any letter case."""
    forms = [ioc.normalised, ioc.normalised.upper()]
    if ioc.type is IocType.IP and ":" in ioc.normalised:
        forms.append(ipaddress.IPv6Address(ioc.normalised).exploded)
    return forms


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_token_iocs_find_their_own_value(data: st.DataObject) -> None:
    ioc_type = data.draw(st.sampled_from(TOKEN_TYPES))
    ioc = replace(_valid(ioc_type, data.draw(VALUES[ioc_type])), id=5)
    forms = _event_forms(ioc)
    # A letter whose upper case does not lower back ("ß" -> "SS") is another text, not a case
    # form; IPv6 hex is the one value where upper case is the same address in other letters.
    assume(ioc.type is IocType.IP or all(form.lower() == ioc.normalised.lower() for form in forms))
    rows = [{"fields": {"Exact": form, "Spaced": f"x {form} y"}} for form in forms]
    hits = compile_iocs([ioc]).match(make_batch(rows))
    found = set(zip(hits.column("seq").to_pylist(), hits.column("field").to_pylist(), strict=True))
    for seq in range(len(forms)):
        assert {(seq, "Exact"), (seq, "Spaced")} <= found, (ioc, forms[seq])
