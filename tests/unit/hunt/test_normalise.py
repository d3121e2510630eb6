"""normalise(): stripping, refanging, lower-casing, validation and type inference."""

from __future__ import annotations

import pytest

from casescope.hunt.ioc import IocError, IocType
from casescope.hunt.normalise import infer_type, normalise
from casescope.hunt.refang import refang
from tests.unit.hunt.cases import MD5, SHA1, SHA256


@pytest.mark.parametrize(
    ("defanged", "fanged"),
    [
        ("hxxp://evil[.]com", "http://evil.com"),
        ("hXXps[:]//evil(.)com/a", "https://evil.com/a"),
        ("evil{.}co[dot]uk", "evil.co.uk"),
        ("bob[@]evil[.]com", "bob@evil.com"),
        ("bob[at]evil(dot)com", "bob@evil.com"),
        ("hxxp[://]evil.com", "http://evil.com"),
        ("fxp://files[.]evil.com", "ftp://files.evil.com"),
        ("evil[[.]]com", "evil.com"),
        ("plain.example.org", "plain.example.org"),
    ],
)
def test_refang(defanged: str, fanged: str) -> None:
    assert refang(defanged) == fanged


@pytest.mark.parametrize(
    ("value", "ioc_type", "normalised"),
    [
        ("  10.1.1.1 \n", IocType.IP, "10.1.1.1"),
        ("10[.]1[.]1[.]1", IocType.IP, "10.1.1.1"),
        ("2001:0DB8:0:0:0:0:0:1", IocType.IP, "2001:db8::1"),
        ("[2001:db8::1]", IocType.IP, "2001:db8::1"),
        ("10.1.2.3/8", IocType.CIDR, "10.0.0.0/8"),
        ("hxxps://Evil[.]com/A", IocType.URL, "https://evil.com/a"),
        ("*.Evil-Site.com.", IocType.DOMAIN, "evil-site.com"),
        ("bücher.de", IocType.DOMAIN, "xn--bcher-kva.de"),
        (MD5.upper(), IocType.MD5, MD5),
        (SHA1, IocType.SHA1, SHA1),
        (SHA256, IocType.SHA256, SHA256),
        ("Evil.EXE", IocType.FILENAME, "evil.exe"),
        ("C:\\Windows\\Temp\\", IocType.FILEPATH, "c:\\windows\\temp\\"),
        ("HKEY_LOCAL_MACHINE\\Software\\Run\\", IocType.REGISTRY, "hklm\\software\\run"),
        ("\\REGISTRY\\MACHINE\\Software\\Run", IocType.REGISTRY, "hklm\\software\\run"),
        ("Computer\\HKEY_CURRENT_USER\\X", IocType.REGISTRY, "hkcu\\x"),
        ("Software\\Run", IocType.REGISTRY, "software\\run"),
        ("S-1-5-21-1-2-3-500", IocType.SID, "s-1-5-21-1-2-3-500"),
        ("Bob[at]Evil[.]com", IocType.EMAIL, "bob@evil.com"),
        ("PowerShell  -Enc\tJAB", IocType.COMMAND, "powershell -enc jab"),
        ("CORP\\JDoe", IocType.USERNAME, "corp\\jdoe"),
        ("Mimikatz", IocType.STRING, "mimikatz"),
        ("  (?-i)Invoke-\\w+ ", IocType.REGEX, "(?-i)Invoke-\\w+"),
    ],
)
def test_normalise_by_type(value: str, ioc_type: IocType, normalised: str) -> None:
    ioc = normalise(value, ioc_type, comment="from a report")
    assert (ioc.type, ioc.value, ioc.normalised, ioc.comment) == (
        ioc_type,
        value,
        normalised,
        "from a report",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MD5, IocType.MD5),
        (SHA1.upper(), IocType.SHA1),
        (SHA256, IocType.SHA256),
        ("10.1.1.1", IocType.IP),
        ("10[.]1.1.1", IocType.IP),
        ("fe80::1", IocType.IP),
        ("10.0.0.0/8", IocType.CIDR),
        ("hxxp://evil[.]com", IocType.URL),
        ("HKLM\\Software\\Run", IocType.REGISTRY),
        ("HKEY_USERS\\S-1-5-18", IocType.REGISTRY),
        ("S-1-5-18", IocType.SID),
        ("bob@evil.com", IocType.EMAIL),
        ("evil-site.com", IocType.DOMAIN),
        ("evil[.]site", IocType.DOMAIN),
        ("evil.exe", IocType.FILENAME),
        ("report.zip", IocType.FILENAME),
        ("C:\\Windows\\evil.exe", IocType.FILEPATH),
        ("/tmp/x", IocType.FILEPATH),
        ("mimikatz", IocType.STRING),
        ("abc123", IocType.STRING),  # hex-looking but not a hash length
        ("sekurlsa::logonpasswords", IocType.STRING),
    ],
)
def test_infer_type(value: str, expected: IocType) -> None:
    assert infer_type(value) is expected
    assert normalise(value).type is expected


@pytest.mark.parametrize(
    ("value", "ioc_type", "message"),
    [
        ("10.1.1.256", "ip", "not a valid IPv4 or IPv6 address"),
        ("010.1.1.1", "ip", "not a valid IPv4"),
        ("fe80::1%eth0", "ip", "zone ids"),
        ("2001:db8::/32", "cidr", "only IPv4 CIDR"),
        ("10.0.0.0/33", "cidr", "not a valid CIDR"),
        (MD5[:-1], "md5", "expected 32 hex digits, got 31"),
        (MD5 + "0", "md5", "expected 32 hex digits, got 33"),
        ("z" * 40, "sha1", "non-hex"),
        (SHA1, "sha256", "expected 64 hex digits, got 40"),
        ("abc", "hash", "not an MD5, SHA-1 or SHA-256"),
        ("evil site.com", "domain", "not a valid domain"),
        ("http://evil.com", "domain", "use type url"),
        ("10.1.1.1", "domain", "use type ip"),
        ("evil.com", "url", "not a URL"),
        ("C:\\evil.exe", "filename", "use type filepath"),
        ("HKLM", "registry", "whole hive"),
        ("S-1-x", "sid", "not a Windows SID"),
        ("bob", "email", "not an e-mail address"),
        ("(?<=a)b", "regex", "does not compile"),
        ("(unclosed", "regex", "does not compile"),
        ("(?x)a b", "regex", "flags"),
        ("\\<word\\>", "regex", "not supported"),
        ("   ", None, "empty"),
        ("x", "ipaddr", "unknown IOC type"),
    ],
)
def test_invalid_values_raise_clear_errors(value: str, ioc_type: str | None, message: str) -> None:
    with pytest.raises(IocError, match=message.replace("(", r"\(").replace(")", r"\)")):
        normalise(value, ioc_type)


@pytest.mark.parametrize(
    ("alias", "value", "expected"),
    [
        ("ipv4", "1.2.3.4", IocType.IP),
        ("IP-DST", "1.2.3.4", IocType.IP),
        ("hostname", "evil.com", IocType.DOMAIN),
        ("hash", MD5, IocType.MD5),
        ("hash", SHA256, IocType.SHA256),
        ("regkey", "HKLM\\x", IocType.REGISTRY),
        ("cmdline", "whoami /all", IocType.COMMAND),
        (" SHA1 ", SHA1, IocType.SHA1),
    ],
)
def test_type_aliases(alias: str, value: str, expected: IocType) -> None:
    assert normalise(value, alias).type is expected


@pytest.mark.parametrize("value", ["999.1.1.1", "10.1.1.256", "1[.]2[.]3[.]999", "10.0.0.0/33"])
def test_a_malformed_ipv4_is_refused_unless_a_type_is_given(value: str) -> None:
    """A typo in an address must not become a "string" IOC that never matches an address."""
    with pytest.raises(IocError, match="looks like an IPv4 address"):
        normalise(value)
    assert normalise(value, "string").type is IocType.STRING


def test_dotted_numbers_that_are_not_meant_as_addresses_stay_strings() -> None:
    assert normalise("10.0.19041.1").type is IocType.STRING  # a Windows build number
    assert normalise("1.2.3").type is IocType.STRING
