"""ORM tables of the metadata DB (SQLite by default, PostgreSQL when scaled out).

Times that workers compare (leases, heartbeats) are epoch seconds as floats: portable across
both databases and free of timezone handling. Times shown to people are UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from casescope.model.enums import (
    AuditAction,
    CaseStatus,
    ExclusionKind,
    FileStatus,
    FileType,
    IndexState,
    JobState,
    Operation,
    SliceState,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(enum_cls: type, length: int = 16) -> Enum:
    """Store enum *values* as plain strings (no native DB enum: migrations stay simple)."""
    return Enum(
        enum_cls,
        values_callable=lambda e: [m.value for m in e],
        native_enum=False,
        validate_strings=True,
        length=length,
    )


class Base(DeclarativeBase):
    pass


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: A closed case is read-only: every write route and intake refuse until it is reopened.
    status: Mapped[CaseStatus] = mapped_column(
        _enum(CaseStatus), default=CaseStatus.OPEN, server_default=CaseStatus.OPEN.value
    )
    #: The user answerable for the case (None: nobody named, or the user was deleted).
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )

    files: Mapped[list[EvidenceFile]] = relationship(back_populates="case")


class DeletedCase(Base):
    """A case that was deleted: who deleted it, when, and what was removed.

    Kept for the record (retention proof) and so that SQLite never hands the id of a
    deleted case to a new one (it reuses the largest rowid once that row is gone): links to
    the deleted case must answer 404, not show another case. `leftovers` holds the paths
    still to be removed from disk; `cleaned` is set once they and the index rows are gone.
    """

    __tablename__ = "case_deletions"

    #: The id the case had (named `id`, not `case_id`: this row is not one of the case's).
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    deleted_by: Mapped[str] = mapped_column(String(100))
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    summary: Mapped[str] = mapped_column(Text, default="")  # JSON: what was removed
    leftovers: Mapped[str] = mapped_column(Text, default="")  # JSON: paths to remove
    cleaned: Mapped[bool] = mapped_column(Boolean, default=False)


class Segment(Base):
    """An immutable Parquet file of parsed events, shared by every file with the same bytes."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("sha256", "parser_version", "variant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    parser_version: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(16), default="")  # hash of a --map, if any
    path: Mapped[str] = mapped_column(Text)
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EvidenceFile(Base):
    __tablename__ = "evidence_files"
    __table_args__ = (
        UniqueConstraint("case_id", "sha256"),
        Index("ix_files_case_status", "case_id", "status"),
        Index("ix_files_index_state", "index_state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    file_type: Mapped[FileType] = mapped_column(_enum(FileType))
    original_path: Mapped[str] = mapped_column(Text)
    stored_path: Mapped[str] = mapped_column(Text)
    status: Mapped[FileStatus] = mapped_column(_enum(FileStatus), default=FileStatus.QUEUED)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    index_state: Mapped[IndexState] = mapped_column(_enum(IndexState), default=IndexState.NONE)
    index_generation: Mapped[int] = mapped_column(Integer, default=0)
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id"), nullable=True)
    #: A group's load bundle holding this file's events (jobs/group.py); None: load the
    #: segment itself. Only an optimisation: a missing bundle falls back to the segment.
    load_bundle: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The query-id prefix of the loader that claimed this file last and has not finished
    #: it (store/load_claims.py): the next claimant stops that loader's INSERTs first.
    load_claimant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    events_estimated: Mapped[int] = mapped_column(BigInteger, default=0)
    events_processed: Mapped[int] = mapped_column(BigInteger, default=0)
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    field_map: Mapped[str] = mapped_column(Text, default="")  # JSON: core column -> source field
    warnings: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The Sigma rule set (`rule_sets.hash`) the file's detections are the results of.
    sigma_ruleset: Mapped[str | None] = mapped_column(String(32), nullable=True)

    case: Mapped[Case] = relationship(back_populates="files")
    segment: Mapped[Segment | None] = relationship()


class LoadPiece(Base):
    """A complete piece of a large file's segment, published while its worker parses on,
    so that the index owner loads it before the file completes (store/pieces.py)."""

    __tablename__ = "load_pieces"
    __table_args__ = (
        UniqueConstraint("file_id", "job_id", "attempt", "piece"),
        Index("ix_load_pieces_loaded", "loaded", "file_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("evidence_files.id"))
    #: The job attempt that wrote it: only the running (or finished) attempt's pieces load.
    job_id: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    piece: Mapped[int] = mapped_column(Integer)
    #: Its events are those with seq_from <= seq < seq_to.
    seq_from: Mapped[int] = mapped_column(BigInteger)
    seq_to: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text)
    loaded: Mapped[bool] = mapped_column(Boolean, default=False)


class FileSlice(Base):
    """A chunk range of a large EVTX file, parsed as part of its job's attempt by any idle
    worker (jobs/slices.py; docs/decisions.md, "Large files load in pieces").
    The job's owner plans them; one active job per file stays the rule."""

    __tablename__ = "file_slices"
    __table_args__ = (
        UniqueConstraint("job_id", "attempt", "number"),
        Index("ix_file_slices_claim", "state", "job_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("evidence_files.id"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    #: Chunks [chunk_from, chunk_to) of the file; their events are seq [seq_from,
    #: seq_from + events) of the whole file.
    chunk_from: Mapped[int] = mapped_column(Integer)
    chunk_to: Mapped[int] = mapped_column(Integer)
    seq_from: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int] = mapped_column(BigInteger)
    #: The number of its first load piece: pieces of later slices number after it, so the
    #: segment's pieces sort in `seq` order.
    first_piece: Mapped[int] = mapped_column(Integer)
    state: Mapped[SliceState] = mapped_column(_enum(SliceState), default=SliceState.QUEUED)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Claims so far: a worker whose lease ran out cannot write over its successor's run.
    runs: Mapped[int] = mapped_column(Integer, default=0)
    detections: Mapped[int] = mapped_column(Integer, default=0)
    ioc_hits: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


#: The partial unique index of `jobs` (see `Job`), in SQL that SQLite and PostgreSQL share.
ACTIVE_FILE_INDEX = (
    "CREATE UNIQUE INDEX uq_jobs_active_file ON jobs (file_id) "
    "WHERE state IN ('queued', 'running', 'paused')"
)


class Job(Base):
    """A work item: the queue is this table (docs/decisions.md, "The job table is the queue")."""

    __tablename__ = "jobs"
    # One evidence file can never be queued or running twice: the partial unique index
    # `uq_jobs_active_file` (ACTIVE_FILE_INDEX) is made by migration 0007 and, for a new
    # database, by `db.create_schema`, not declared here: a `postgresql_where` here would
    # import SQLAlchemy's PostgreSQL dialect into every process on SQLite, a tenth of a
    # short command's start-up (bench/cli.py). A revision written with `--autogenerate`
    # must not drop it.
    __table_args__ = (
        Index("ix_jobs_claim", "state", "priority", "id"),
        Index("ix_jobs_operation", "operation_id", "state"),
        # A file's jobs (enqueue's "already active?" check, a cancel's previous outcomes).
        Index("ix_jobs_file", "file_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("evidence_files.id"))
    operation: Mapped[Operation] = mapped_column(_enum(Operation))
    state: Mapped[JobState] = mapped_column(_enum(JobState), default=JobState.QUEUED)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    #: Claims that ended because the worker died while holding the file in a group of small
    #: files: they do not count against `max_attempts` (jobs/queue.py).
    group_deaths: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The most files it may be claimed with, after such a death (None: the usual group).
    group_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The bulk operation (`operations` row) this job belongs to; None for repairs.
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"), nullable=True)


class AuditRecord(Base):
    """One row per pipeline step and per state-changing action."""

    __tablename__ = "audit"
    #: action, case and time: the audit page's tabs and filters (bench/audit_page.py).
    __table_args__ = (
        Index("ix_audit_file", "file_id"),
        Index("ix_audit_action", "action"),
        Index("ix_audit_case", "case_id"),
        Index("ix_audit_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(100), default="system")
    #: Any other value is refused on write (migration 0020 renamed the rows of old names).
    action: Mapped[AuditAction] = mapped_column(_enum(AuditAction, length=50))
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    file_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")


class WorkerRecord(Base):
    """A live (or recently live) worker process, refreshed by its heartbeat."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
    current_job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    current_file_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    job_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    rss_mb: Mapped[float] = mapped_column(Float, default=0.0)
    tasks_done: Mapped[int] = mapped_column(Integer, default=0)


class Rule(Base):
    """A Sigma rule as imported; its YAML is kept so any worker can compile the active set."""

    __tablename__ = "rules"
    __table_args__ = (UniqueConstraint("source", "path"), Index("ix_rules_uid", "rule_uid"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_uid: Mapped[str] = mapped_column(String(100))  # the Sigma id (or the path if none)
    title: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[str] = mapped_column(String(20), default="")
    status: Mapped[str] = mapped_column(String(20), default="")
    tags: Mapped[str] = mapped_column(Text, default="")  # space separated
    source: Mapped[str] = mapped_column(String(200))  # the import's name
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    yaml: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it cannot run
    #: what had to be fixed for pySigma to load it (a bare tag, a non-UUID id...), one a line
    warnings: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[str] = mapped_column(
        Text, default="", server_default=""
    )  # Hayabusa's `details` template
    aliases: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: alias -> eventkey
    as_written: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )  # no log-source pipeline
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Detection(Base):
    """One Sigma hit: the exact event (file, seq, record id, time) and the rule."""

    __tablename__ = "detections"
    __table_args__ = (
        # by rule: hits, hosts and first/last seen read from the index alone
        Index("ix_detections_case_rule_host", "case_id", "rule_id", "computer", "ts"),
        Index("ix_detections_case_ts", "case_id", "ts"),  # the detection timeline
        Index("ix_detections_file", "file_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer)
    file_id: Mapped[int] = mapped_column(ForeignKey("evidence_files.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    record_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ts: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id"))
    #: The event's computer (None: stored before it was recorded; see services.detections).
    computer: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: JSON: the event fields correlation rules group by (for hits of rules they reference),
    #: or, for a correlation hit, its group, count, window and the detections in it.
    fields: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the case exclusion that hides this hit (kept, countable, restorable); None: shown
    excluded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Exclusion(Base):
    """Hits an analyst silenced in one case: a rule's (all, or where the event holds field
    values) or those a Sigma filter document excludes. Hidden hits keep `excluded_by`."""

    __tablename__ = "exclusions"
    __table_args__ = (Index("ix_exclusions_case", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[ExclusionKind] = mapped_column(_enum(ExclusionKind))
    rule_uids: Mapped[str] = mapped_column(Text)  # JSON list of Sigma ids, or ["any"]
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)  # one rule set
    conditions: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON {field: [..]}
    document: Mapped[str] = mapped_column(Text, default="", server_default="")  # Sigma filter
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RuleSetManifest(Base):
    """An activated Sigma rule set: which rules (id -> content hash) it evaluated.

    A `sigma_only` run compares the manifest of a file's last set with the active one and
    evaluates only rules that are new or changed; the other results stay.
    """

    __tablename__ = "rule_sets"

    hash: Mapped[str] = mapped_column(String(32), primary_key=True)
    rules: Mapped[str] = mapped_column(Text)  # JSON object: rule id -> content hash
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SigmaPlaceholder(Base):
    """Values of one `|expand` placeholder (`%known_cdcs%` -> DC names), for every rule
    that uses it; a rule whose placeholders have no values does not compile."""

    __tablename__ = "sigma_placeholders"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)  # without the %
    values: Mapped[str] = mapped_column(Text)  # JSON list of strings
    updated_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Ioc(Base):
    """An indicator of compromise hunted in one case (see docs/ioc.md for the types).

    `value` is the normalised form that is matched; `original` is what the analyst entered or
    imported. A disabled IOC is kept but not hunted, and has no hits.
    """

    __tablename__ = "iocs"
    __table_args__ = (UniqueConstraint("case_id", "type", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    type: Mapped[str] = mapped_column(String(16))  # a `casescope.hunt.IocType` value
    value: Mapped[str] = mapped_column(Text)
    original: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(200), default="")  # "cli", a file name, ...
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IocHit(Base):
    """One IOC found in one field of one event (file, seq, record id, time)."""

    __tablename__ = "ioc_hits"
    __table_args__ = (
        Index("ix_ioc_hits_case_ioc", "case_id", "ioc_id"),
        Index("ix_ioc_hits_file", "file_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer)
    file_id: Mapped[int] = mapped_column(ForeignKey("evidence_files.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    record_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ts: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ioc_id: Mapped[int] = mapped_column(ForeignKey("iocs.id"))
    field: Mapped[str] = mapped_column(Text)  # the map key, or a core column's name
    excerpt: Mapped[str] = mapped_column(Text, default="")  # the matched value, truncated
