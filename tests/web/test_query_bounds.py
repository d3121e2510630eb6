"""Bounded queries through the real app: time bounds, query size, searches beside exports.

One home is filled once (an upload of real attack samples through the app); each test then
opens its own app on it with the settings it needs (one index owner at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from casescope.config import Settings
from casescope.services.search import SearchRequest, build_where
from casescope.store.events_table import DATABASE
from casescope.web.app import create_app
from tests.web.conftest import app_settings, login, running_app, sample_uploads

TIMEOUT = "query took too long (1e-06 s): narrow the time range or the query"
GUARD = 60.0  # seconds before a test that would hang fails instead


@dataclass(frozen=True)
class Home:
    settings: Settings
    case_id: int
    events: int


@contextmanager
def app_on(settings: Settings) -> Iterator[tuple[FastAPI, TestClient]]:
    """The app on `settings`' home, its lifespan running, and the analyst logged in."""
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver"):
        yield app, login(app, "analyst")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[Home]:
    """The settings stay in the environment for the tests' apps, as their worker pools read
    them there."""
    files = sample_uploads(attack_samples)
    with app_settings(tmp_path_factory.mktemp("boundshome")) as settings:
        with running_app(settings, files, case_name="bounds") as web:
            events = f"/api/cases/{web.case_id}/events?exact_total=true"
            total = web.clients["analyst"].get(events).json()["total"]
        assert total > 0
        yield Home(settings, web.case_id, total)


def test_queries_past_their_time_bound_answer_503_with_the_reason(home: Home) -> None:
    tiny = home.settings.model_copy(
        update={"query_timeout_seconds": 1e-6, "long_query_timeout_seconds": 1e-6}
    )
    case = f"/api/cases/{home.case_id}"
    with app_on(tiny) as (_, analyst):
        for url in (
            f"{case}/events?exact_total=true",
            f"{case}/events?q=cmd.exe",
            f"{case}/facets?field=Image&exact=true",
            f"{case}/export?format=csv",
            f"{case}/histogram",  # the timeline of a search (and of the dashboard)
        ):
            r = analyst.get(url)
            assert (r.status_code, r.json()) == (503, {"detail": TIMEOUT}), url
        page = analyst.get(f"/cases/{home.case_id}/search?q=cmd.exe")
        assert page.status_code == 200 and TIMEOUT in page.text  # inside the layout


def test_a_query_over_the_size_limits_is_400_with_the_reason(home: Home) -> None:
    small = home.settings.model_copy(update={"query_max_chars": 300, "query_max_terms": 20})
    events = f"/api/cases/{home.case_id}/events"
    with app_on(small) as (_, analyst):
        many = analyst.get(events, params={"q": " OR ".join(f"w{n}" for n in range(21))})
        assert many.status_code == 400
        assert "more than 20 terms (CASESCOPE_QUERY_MAX_TERMS)" in many.json()["detail"]
        long = analyst.get(events, params={"q": "x" * 301})
        assert long.status_code == 400
        assert "longer than 300 characters" in long.json()["detail"]
        assert analyst.get(events, params={"q": " ".join(["w"] * 20)}).status_code == 200
        saved = analyst.post(
            f"/api/cases/{home.case_id}/saved-searches",
            json={"name": "too long", "params": {"q": "x" * 301}},
        )
        assert saved.status_code == 400


def test_a_search_answers_while_an_export_chunk_holds_a_reader(home: Home) -> None:
    """An export chunk (a stream on a reader connection) is held open; a search over HTTP
    answers meanwhile, and the stream still reads every event afterwards."""
    streaming, searched = threading.Event(), threading.Event()
    seen: dict[str, object] = {}
    with app_on(home.settings) as (app, analyst):
        state = app.state.web

        def export_chunk() -> None:
            where = build_where(SearchRequest(home.case_id))
            with state.index.use() as index:
                sql = f"SELECT seq FROM {DATABASE}.events WHERE {where.sql}"
                stream = index.stream_batches(sql, where.params, rows_per_batch=100)
                rows = next(stream).num_rows
                streaming.set()
                seen["searched while streaming"] = searched.wait(GUARD)
                seen["rows"] = rows + sum(batch.num_rows for batch in stream)

        exporter = threading.Thread(target=export_chunk, daemon=True)
        exporter.start()
        assert streaming.wait(GUARD)
        r = analyst.get(f"/api/cases/{home.case_id}/events?exact_total=true")
        searched.set()
        exporter.join(GUARD)
    assert r.status_code == 200 and r.json()["total"] == home.events
    assert seen == {"searched while streaming": True, "rows": home.events}
