"""The search form as the parameters that history, saved searches and the export's audit
record keep: every field by name, JSON-able, defaults left out where asked."""

from __future__ import annotations

import orjson

from casescope.services.event_search import SortKey
from casescope.web.api.params import SearchForm
from casescope.web.api.search import Order, View, search_params


def test_a_form_gives_every_field_by_name() -> None:
    form = SearchForm(q="cmd.exe", has_detection=True, file_id=3, filter=("EventID:1",))
    params = form.as_params()
    assert params == {
        "q": "cmd.exe",
        "start": "",
        "end": "",
        "has_detection": True,
        "level": "",
        "has_ioc_hit": False,
        "channel": "",
        "computer": "",
        "file_id": 3,
        "show_hidden": False,
        "starred": False,
        "rule": "",
        "ioc_id": None,
        "filter": ["EventID:1"],
    }
    assert orjson.loads(orjson.dumps(params)) == params


def test_search_params_leave_the_defaults_out() -> None:
    form = SearchForm(q="x", filter=("a:b", "c:d"))
    view = View(Order.DESC, SortKey.COMPUTER, ("Image",))
    assert search_params(form, view) == {
        "q": "x",
        "filter": ["a:b", "c:d"],
        "order": "desc",
        "sort": "computer",
        "columns": "Image",
    }
    assert search_params(SearchForm(), View()) == {}
