"""The case story: an ordered list of chosen events with the analyst's text between them.

One story per case. Each row is an event (file id + seq, with the event's time so that a
report can look it up in the index by its time range) or a block of text. `position` is the
order, renumbered 0..n-1 on every change (a story holds at most a few hundred items).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casescope.model.tables import Base, _enum, utcnow


class StoryItemKind(StrEnum):
    """What one entry of a story is."""

    EVENT = "event"  # one event of the case, by (file id, seq)
    TEXT = "text"  # the analyst's text between events


class StoryItem(Base):
    __tablename__ = "story_items"
    __table_args__ = (
        Index("ix_story_items_case_position", "case_id", "position"),
        Index("ix_story_items_case_event", "case_id", "file_id", "seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[StoryItemKind] = mapped_column(_enum(StoryItemKind))
    file_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ts: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
