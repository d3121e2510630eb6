"""Ids in requests on PostgreSQL: its INTEGER ends at 2**31 - 1 (web/ids.py). A module of its
own: one process holds one chDB index at a time, and this app has its own home."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from casescope.web.ids import parse_id
from tests.postgres import PostgresCluster
from tests.web.conftest import Web, open_web


@pytest.fixture(scope="module")
def on_postgresql(
    tmp_path_factory: pytest.TempPathFactory, postgres_cluster: PostgresCluster
) -> Iterator[Web]:
    """The same app on PostgreSQL, whose INTEGER ids end at 2**31 - 1."""
    home = tmp_path_factory.mktemp("pghome")
    env = {"CASESCOPE_WORKERS": "1", "CASESCOPE_DATABASE_URL": postgres_cluster.database()}
    with open_web(home, case_name="pg case", env=env) as app:
        yield app


@pytest.mark.parametrize("path", ["/api/cases/{id}", "/api/cases/{case}/operations/{id}"])
@pytest.mark.parametrize("big", [2**31, 2**40])
def test_ids_past_postgresql_integers_are_4xx(on_postgresql: Web, path: str, big: int) -> None:
    """PostgreSQL refuses an INTEGER parameter past 2**31 - 1 (a 500 before ids were bounded
    to it); SQLite took them."""
    url = path.format(id=big, case=on_postgresql.case_id)
    r = on_postgresql.clients["admin"].get(url)
    assert 400 <= r.status_code < 500, (url, r.status_code, r.text[:300])
    assert parse_id(str(big)) is None
