"""The query language's mark terms answered for one case: `tag:`, `is:`, `has:` from the
marks, `note:` and `has:note` from the notes (both kept in the metadata DB)."""

from __future__ import annotations

from casescope.model.db import Database
from casescope.services.marks import mark_events
from casescope.services.notes import noted_events
from casescope.store.query import Literal, Marked, MarkLookup
from casescope.store.query_ast import MarkField, MarkState
from casescope.store.where import EventKey


def mark_lookup(db: Database, case_id: int) -> MarkLookup:
    """What answers the mark terms of a query searched in the case."""

    def lookup(term: Marked) -> tuple[EventKey, ...]:
        if term.field is MarkField.NOTE:
            return noted_events(db, case_id, term.value)
        if term.field is MarkField.HAS and term.value == Literal(MarkState.NOTE.value):
            return noted_events(db, case_id, None)
        return mark_events(db, case_id, term)

    return lookup
