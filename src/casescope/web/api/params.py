"""The search form as request parameters, shared by the search, export and page routes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Query

from casescope.detect.levels import SigmaLevel
from casescope.errors import CasescopeError
from casescope.services.event_search import EventFilters
from casescope.services.search import SearchRequest
from casescope.store.pills import MAX_CLAUSE, MAX_PILLS, conjoin
from casescope.store.query import QueryLimits, QuerySyntaxError, compile_query, no_marks
from casescope.web.ids import parse_id

#: The longest `q` a request may carry at all; CASESCOPE_QUERY_MAX_CHARS (at most this)
#: is the bound a query meets, with a message that names it.
MAX_QUERY_PARAM = 100_000


def parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name}: not an ISO 8601 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class SearchForm:
    q: str = ""
    start: str = ""
    end: str = ""
    has_detection: bool = False
    level: str = ""
    has_ioc_hit: bool = False
    channel: str = ""
    computer: str = ""
    file_id: int | None = None
    show_hidden: bool = False
    starred: bool = False
    rule: str = ""
    ioc_id: int | None = None
    #: Query-language clauses AND-ed with `q`: the page's pills ("filter for / out").
    filter: tuple[str, ...] = ()

    def as_params(self) -> dict[str, object]:
        """Every field by name, JSON-able (the pills as a list): what the search history,
        saved searches and an export's audit record keep."""
        return {**asdict(self), "filter": list(self.filter)}

    def request(self, case_id: int, limits: QueryLimits) -> SearchRequest:
        """The search of this form in a case; a query with a syntax error or over `limits`
        is the caller's: a 400 that says where."""
        try:
            query = conjoin(self.q, self.filter)
            compile_query(query, limits=limits, marks=no_marks)
        except QuerySyntaxError as exc:
            raise HTTPException(400, f"query: {exc}") from None
        start, end = parse_time(self.start, "start"), parse_time(self.end, "end")
        if start is not None and end is not None and start > end:
            raise HTTPException(400, "the time range ends before it starts (start is after end)")
        return SearchRequest(case_id, query, start, end, limits=limits)

    def filters(self) -> EventFilters:
        try:
            level = SigmaLevel.parse(self.level) if self.level else None
        except CasescopeError as exc:
            raise HTTPException(400, str(exc)) from None
        return EventFilters(
            has_detection=self.has_detection,
            min_level=level,
            has_ioc_hit=self.has_ioc_hit,
            channel=self.channel,
            computer=self.computer,
            file_id=self.file_id,
            show_hidden=self.show_hidden,
            starred_only=self.starred,
            rule_uid=self.rule or None,
            ioc_id=self.ioc_id,
        )


def search_form(
    q: Annotated[
        str,
        Query(
            max_length=MAX_QUERY_PARAM,
            description="Query language text (at most CASESCOPE_QUERY_MAX_CHARS characters).",
        ),
    ] = "",
    start: Annotated[str, Query(description="From (ISO 8601, UTC).")] = "",
    end: Annotated[str, Query(description="To, exclusive (ISO 8601, UTC).")] = "",
    has_detection: bool = False,
    level: Annotated[str, Query(description="Minimum Sigma level (implies detections).")] = "",
    has_ioc_hit: bool = False,
    channel: Annotated[str, Query(max_length=500)] = "",
    computer: Annotated[str, Query(max_length=500)] = "",
    file_id: Annotated[str, Query(max_length=20, description="Only this file id.")] = "",
    show_hidden: bool = False,
    starred: bool = False,
    rule: Annotated[str, Query(max_length=200, description="Only events this rule hit.")] = "",
    ioc_id: Annotated[str, Query(max_length=20, description="Only events this IOC hit.")] = "",
    filter: Annotated[
        list[str] | None,
        Query(description="A query-language clause AND-ed with `q` (repeatable: the pills)."),
    ] = None,
) -> SearchForm:
    return SearchForm(
        q,
        start,
        end,
        has_detection,
        level,
        has_ioc_hit,
        channel,
        computer,
        _number(file_id, "file_id"),
        show_hidden,
        starred,
        rule.strip(),
        _number(ioc_id, "ioc_id"),
        _pills(filter or []),
    )


def _pills(pills: list[str]) -> tuple[str, ...]:
    """The `filter` clauses without blanks: at most MAX_PILLS of at most MAX_CLAUSE each."""
    kept = tuple(p for p in pills if p.strip())
    if len(kept) > MAX_PILLS:
        raise HTTPException(400, f"at most {MAX_PILLS} filters")
    if any(len(p) > MAX_CLAUSE for p in kept):
        raise HTTPException(400, f"a filter is at most {MAX_CLAUSE} characters")
    return kept


def _number(text: str, name: str) -> int | None:
    """An optional id parameter: empty is None, anything but an id is a 400."""
    if not text.strip():
        return None
    number = parse_id(text)
    if number is None:
        raise HTTPException(400, f"{name} must be a number (an id)")
    return number


Form = Annotated[SearchForm, Depends(search_form)]
