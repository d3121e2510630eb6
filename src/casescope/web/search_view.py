"""What the search page shows around its rows: pills, paging links, column headers, and each
row's summary values, badges and pivots. Pure functions of the page's parameters and result.

Every link is the page's own query string with one thing changed, so a search, a page of it,
a filter or a column choice is always a shareable URL.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from casescope.services.annotations import Badges
from casescope.services.first_steps import FirstSteps
from casescope.store.pills import MAX_CLAUSE, Pivot, Source, clause, nameable
from casescope.store.summary import clip, summary_pairs

#: Result columns a value of which can be pivoted on, as (row key, query-language name).
PIVOT_COLUMNS = ("event_id", "channel", "computer", "user_name")
#: Values longer than this are shown but offer no pivot (a pill is a URL parameter).
PIVOT_CHARS = MAX_CLAUSE // 2


def qs(params: dict[str, Any]) -> str:
    """A query string: booleans as true/false, lists as repeated parameters, None left out."""
    flat = {
        k: (str(v).lower() if isinstance(v, bool) else v)
        for k, v in params.items()
        if v is not None
    }
    return urlencode(flat, doseq=True)


def without(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in names}


@dataclass(frozen=True)
class Pill:
    text: str
    negated: bool
    remove_qs: str


def pills(current: dict[str, Any]) -> list[Pill]:
    """The search's filters, each with the query string of the search without it."""
    clauses = list(current.get("filter", []))
    out = []
    for n, text in enumerate(clauses):
        rest = clauses[:n] + clauses[n + 1 :]
        remove = qs({**without(current, "filter"), **({"filter": rest} if rest else {})})
        out.append(Pill(text, text.startswith("NOT "), remove))
    return out


def column_headers(current: dict[str, Any], columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Each extra column with the query string of the search without it."""
    out = []
    for name in columns:
        rest = ",".join(c for c in columns if c != name)
        out.append({"name": name, "remove_qs": qs({**current, "columns": rest or None})})
    return out


@dataclass(frozen=True)
class Paging:
    first_qs: str | None
    prev_qs: str | None
    next_qs: str | None
    last_qs: str | None
    label: str


def paging(current: dict[str, Any], page: dict[str, Any], at: int | None, size: int) -> Paging:
    """First / previous / next / last links and "events 51-100 of 1,234 · page 2 of 25",
    for pages of `size` rows.

    `at` is the position of the page's first row when known (it travels in the URL, as a
    label only: the rows come from the keyset cursors). The last page holds the remainder
    of a counted result, so that walking back from it meets the pages walked forward.
    """
    rows, total, exact = len(page["rows"]), page["total"], page["total_exact"]
    prev_cursor, next_cursor = page["prev_cursor"], page["next_cursor"]
    if prev_cursor is None:
        at = 0
    prev_qs = next_qs = last_qs = None
    if prev_cursor:
        back = max(0, at - size) if at is not None else None
        prev_qs = qs({**current, "cursor": prev_cursor, "direction": "prev", "at": back})
    if next_cursor:
        ahead = at + rows if at is not None else None
        next_qs = qs({**current, "cursor": next_cursor, "at": ahead})
        tail = (total % size or size) if exact else None
        last_at = total - tail if tail else None
        last_qs = qs({**current, "direction": "prev", "size": tail, "at": last_at})
    first_qs = qs(current) if prev_cursor else None
    return Paging(first_qs, prev_qs, next_qs, last_qs, _label(rows, total, exact, at, size))


def _label(rows: int, total: int, exact: bool, at: int | None, size: int) -> str:
    if not rows:
        return ""
    more = "" if exact else "+"
    if at is None:
        return f"{rows:,} events of {total:,}{more}"
    text = f"events {at + 1:,}–{at + rows:,} of {total:,}{more}"
    if exact:
        text += f" · page {at // size + 1:,} of {max(1, math.ceil(total / size)):,}"
    return text


#: Channel names as the results table shows them (the full name is in the pivot data).
_CHANNEL_PREFIX, _CHANNEL_SUFFIX = "Microsoft-Windows-", "/Operational"


def short_channel(channel: str) -> str:
    """`Microsoft-Windows-Sysmon/Operational` as `Sysmon`: the part that tells channels apart
    (a results column at 1366 px has no room for the rest)."""
    return channel.removeprefix(_CHANNEL_PREFIX).removesuffix(_CHANNEL_SUFFIX) or channel


def _value(field: str, value: object, source: Source) -> dict[str, Any]:
    """A shown value and its pivot data: `data` is the exact value as JSON (ASCII only, so
    invisible characters survive the page's escaping of them), None when it offers none."""
    text = "" if value is None else str(value)
    pivotable = value is not None and len(text) <= PIVOT_CHARS
    shown = short_channel(text) if field == "channel" and source is Source.COLUMN else text
    return {
        "field": field,
        "source": source.value,
        "shown": clip(shown),
        "full": text,
        "data": json.dumps(text) if pivotable else None,
        "filterable": pivotable and nameable(field, source),
    }


def decorate(
    rows: list[dict[str, Any]],
    badges: dict[tuple[int, int], Badges],
    columns: tuple[str, ...] = (),
) -> None:
    """Add to each row its pivotable column values, summary values, the values of the extra
    `columns`, and its badges."""
    for row in rows:
        key = (int(row["file_id"]), int(row["seq"]))
        fields = row.get("fields") or {}
        row["values"] = {c: _value(c, row.get(c), Source.COLUMN) for c in PIVOT_COLUMNS}
        pairs = summary_pairs(row["channel"], row["provider"], row["event_id"], fields)
        row["summary"] = [_value(name, value, Source.FIELD) for name, value in pairs]
        row["extra"] = {c: _value(c, fields.get(c), Source.FIELD) for c in columns}
        row["badges"] = badges.get(key, Badges())


def first_step_links(steps: FirstSteps) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The case's commonest event ids and computers and its most hit rules, each as a
    one-click search: (heading, [(label, query string, note)])."""
    ids = [(f"EventID:{e}", qs({"q": f"EventID:{e}"}), f"{n:,}") for e, n in steps.event_ids]
    hosts = []
    for host, n in steps.computers:
        pill = clause("computer", host, Pivot.FOR, Source.COLUMN)
        if pill is not None:
            hosts.append((host or "(none)", qs({"filter": [pill]}), f"{n:,}"))
    rules = [
        (title or uid, qs({"rule": uid}), f"{level} · {hits:,}")
        for uid, title, level, hits in steps.rules
    ]
    return [("Commonest event ids", ids), ("Computers", hosts), ("Rules with the most hits", rules)]
