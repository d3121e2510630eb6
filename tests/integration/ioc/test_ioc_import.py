"""Importing IOC files: CSV with a header or a plain list; bad lines reported by number."""

from __future__ import annotations

from casescope.config import Settings
from casescope.hunt.ioc import IocType
from casescope.model.db import Database
from casescope.model.tables import Case
from casescope.services.iocs import ImportFormat, import_iocs, list_iocs

CSV = """type,value,note
ip,192.168.56[.]1,"SharpRDP source, seen twice"
md5,abc,too short
nosuchtype,x,
domain,inwitelecom.net,
,AD7B9C14083B52BC532FBA5948342B98,inferred
string,"multi
line",spans two lines
sha256,zz,after a multi-line value
"""


def test_csv_import_reports_bad_lines(db: Database, settings: Settings, case: Case) -> None:
    change = import_iocs(db, settings, case.id, CSV, source="feed.csv")
    assert [(e.line, e.message.split(":")[0]) for e in change.errors] == [
        (3, "'abc' is not a valid md5 hash"),
        (4, "unknown IOC type 'nosuchtype' (known"),
        (9, "'zz' is not a valid sha256 hash"),
    ]
    records = list_iocs(db, case.id)
    assert [(r.type, r.value) for r in records] == [
        (IocType.IP, "192.168.56.1"),
        (IocType.DOMAIN, "inwitelecom.net"),
        (IocType.MD5, "ad7b9c14083b52bc532fba5948342b98"),
        (IocType.STRING, "multi\nline"),
    ]
    assert records[0].note == "SharpRDP source, seen twice" and records[0].source == "feed.csv"
    assert records[0].original == "192.168.56[.]1"
    again = import_iocs(db, settings, case.id, CSV)
    assert again.added == [] and again.existing == 4 and len(again.errors) == 3


def test_plain_list_import(db: Database, settings: Settings, case: Case) -> None:
    text = "# C2 addresses\n10.0.2.17\n\nhxxp://evil[.]com/a\n10.0.2.17\n"
    change = import_iocs(db, settings, case.id, text)
    assert not change.errors and change.duplicates == 1
    assert [(r.type, r.value) for r in list_iocs(db, case.id)] == [
        (IocType.IP, "10.0.2.17"),
        (IocType.URL, "http://evil.com/a"),
    ]
    bad = import_iocs(db, settings, case.id, "10.0.2.18\n\n10.0.2.300\n", ioc_type="ip")
    assert [(e.line, e.text) for e in bad.errors] == [(3, "10.0.2.300")] and len(bad.added) == 1
    typed = import_iocs(db, settings, case.id, "jdoe\nIEUser\n", ioc_type="user")
    assert not typed.errors and len(typed.added) == 2
    assert {r.type for r in list_iocs(db, case.id, ioc_type=IocType.USERNAME)} == {IocType.USERNAME}


def test_type_option_fills_empty_csv_type_cells(
    db: Database, settings: Settings, case: Case
) -> None:
    text = "type,value\n,example.zip\nip,10.0.2.17\n"
    import_iocs(db, settings, case.id, text, ioc_type="domain")
    assert [(r.type, r.value) for r in list_iocs(db, case.id)] == [
        (IocType.DOMAIN, "example.zip"),
        (IocType.IP, "10.0.2.17"),
    ]
    forced = import_iocs(db, settings, case.id, "type,value\n", fmt=ImportFormat.LIST)
    assert not forced.errors  # --format list: even a header-like line is an indicator
    assert list_iocs(db, case.id)[-1].value == "type,value"
