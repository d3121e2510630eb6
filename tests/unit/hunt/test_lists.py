"""Importing IOC lists: CSV and one-per-line, with bad lines reported and good ones kept."""

from __future__ import annotations

from casescope.hunt.ioc import IocType
from casescope.hunt.lists import parse_ioc_csv, parse_ioc_list
from tests.unit.hunt.cases import MD5


def test_csv_keeps_good_rows_and_reports_bad_ones() -> None:
    text = (
        "type,value,comment\n"
        "ip,10.1.1.1,C2 server\n"
        "domain,evil[.]com\n"
        "md5,abc,too short\n"
        "\n"
        "# a comment line\n"
        ',"C:\\Temp\\evil.exe","inferred, with a comma"\n'
        "nosuchtype,x\n"
        "only-one-column\n"
        "hash," + MD5 + ",\n"
        "ip,10.1.1.1,duplicate\n"
        'string,"two\nlines"\n'
        "sid,S-1-bad\n"
    )
    result = parse_ioc_csv(text)
    assert [(i.type, i.normalised, i.comment) for i in result.iocs] == [
        (IocType.IP, "10.1.1.1", "C2 server"),
        (IocType.DOMAIN, "evil.com", None),
        (IocType.FILEPATH, "c:\\temp\\evil.exe", "inferred, with a comma"),
        (IocType.MD5, MD5, None),
        (IocType.STRING, "two\nlines", None),
    ]
    assert [(e.line, e.message.split(":")[0]) for e in result.errors] == [
        (4, "'abc' is not a valid md5 hash"),
        (8, "unknown IOC type 'nosuchtype' (known"),
        (9, "expected 2 or 3 columns (type,value[,comment]), got 1"),
        (14, "'s-1-bad' is not a Windows SID (expected S-1-<authority>-<sub>...)"),
    ]
    assert result.duplicates == 1


def test_csv_without_header() -> None:
    result = parse_ioc_csv("url,hxxp://evil[.]com/x\n")
    assert [(i.type, i.normalised) for i in result.iocs] == [(IocType.URL, "http://evil.com/x")]
    assert result.errors == []


def test_list_infers_types_and_skips_comments() -> None:
    text = (
        "# IOCs from report 42\n"
        "10.1.1.1\n"
        "  evil[.]com  \n"
        "\n"
        f"{MD5}\n"
        "2001:db8::/48\n"
        "mimikatz\n"
        "10.1.1.1\n"
    )
    result = parse_ioc_list(text)
    assert [i.type for i in result.iocs] == [
        IocType.IP,
        IocType.DOMAIN,
        IocType.MD5,
        IocType.STRING,
    ]
    assert [(e.line, e.text) for e in result.errors] == [(6, "2001:db8::/48")]
    assert "only IPv4 CIDR" in result.errors[0].message
    assert result.duplicates == 1


def test_list_with_one_type_for_every_line() -> None:
    result = parse_ioc_list("jdoe\nadministrator\n\n", ioc_type="username")
    assert [(i.type, i.normalised) for i in result.iocs] == [
        (IocType.USERNAME, "jdoe"),
        (IocType.USERNAME, "administrator"),
    ]
    bad = parse_ioc_list("10.1.1.1\nnot-an-ip\n", ioc_type=IocType.IP)
    assert [e.line for e in bad.errors] == [2]
