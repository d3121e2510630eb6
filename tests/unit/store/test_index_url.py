"""CASESCOPE_INDEX_URL: what each URL selects, and a clear error naming the setting for
every URL casescope cannot use."""

from __future__ import annotations

import pytest

from casescope.errors import IndexConfigError
from casescope.store.index_url import IndexTarget, IndexTransport, parse_index_url


@pytest.mark.parametrize("url", [None, "", "  "])
def test_unset_is_the_embedded_index(url: str | None) -> None:
    target = parse_index_url(url)
    assert target.transport is IndexTransport.EMBEDDED and not target.transport.is_team


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "clickhouse://analyst:p%40ss@ch.example:8123/casescope",
            IndexTarget(IndexTransport.HTTP, "ch.example", 8123, "analyst", "p@ss"),
        ),
        ("http://ch.example", IndexTarget(IndexTransport.HTTP, "ch.example", 8123)),
        ("https://ch.example/", IndexTarget(IndexTransport.HTTPS, "ch.example", 8443)),
        (
            "clickhouses://u:pw-9@ch.example:9443/casescope?ca_cert=/etc/ca.pem",
            IndexTarget(
                IndexTransport.HTTPS, "ch.example", 9443, "u", "pw-9", ca_cert="/etc/ca.pem"
            ),
        ),
        (
            "https://ch.example?verify=false",
            IndexTarget(IndexTransport.HTTPS, "ch.example", 8443, verify=False),
        ),
        ("chdb:///var/lib/cs-index", IndexTarget(IndexTransport.CHDB, path="/var/lib/cs-index")),
    ],
)
def test_each_scheme_selects_its_transport(url: str, expected: IndexTarget) -> None:
    target = parse_index_url(url)
    assert target == expected
    assert target.transport.is_team
    assert not target.password or target.password not in target.where


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://h/casescope", "unknown scheme mysql://"),
        ("ch.example:8123", "unknown scheme"),
        ("clickhouse://h:99999/casescope", "bad port"),
        ("clickhouse:///casescope", "no host"),
        ("clickhouse://h/other", "the events live in the database 'casescope', not 'other'"),
        ("https://h/casescope?timeout=3", "unknown option 'timeout'"),
        ("https://h/casescope?verify=maybe", "verify must be true or false"),
        ("chdb://relative/dir", "a chdb URL names an absolute directory"),
        ("chdb://", "a chdb URL names an absolute directory"),
    ],
)
def test_a_url_that_cannot_work_is_refused_naming_the_setting(url: str, says: str) -> None:
    with pytest.raises(IndexConfigError) as caught:
        parse_index_url(url)
    assert str(caught.value).startswith("CASESCOPE_INDEX_URL: ")
    assert says in str(caught.value)


def test_the_password_is_never_in_a_message() -> None:
    with pytest.raises(IndexConfigError) as caught:
        parse_index_url("clickhouse://u:hunter2@h/elsewhere")
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in parse_index_url("clickhouse://u:hunter2@h/").where
