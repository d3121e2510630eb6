"""Every fixed set of values the metadata DB stores, as enums (never bare string literals)."""

from __future__ import annotations

from enum import StrEnum


class FileType(StrEnum):
    """Evidence format, detected from content (never from the extension)."""

    EVTX = "evtx"
    NDJSON = "ndjson"
    CSV = "csv"
    UNKNOWN = "unknown"


class FileStatus(StrEnum):
    """Where a file is in its processing; the order is the order of the pipeline."""

    QUEUED = "queued"
    ESTIMATING = "estimating"
    INDEXING = "indexing"
    SIGMA = "sigma"
    IOC = "ioc"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (FileStatus.COMPLETED, FileStatus.FAILED)


class IndexState(StrEnum):
    """Whether a completed file's segment has been loaded into the event index."""

    NONE = "none"  # nothing to load (not processed yet, failed, or zero events)
    PENDING = "pending"  # a segment is ready; the index owner has not loaded it yet
    LOADED = "loaded"


class Operation(StrEnum):
    """What `process_file` does to a file."""

    FULL = "full"
    REINDEX = "reindex"
    SIGMA_ONLY = "sigma_only"
    IOC_ONLY = "ioc_only"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    #: Waiting in a paused operation: not claimable, not lost (resume makes it queued again).
    PAUSED = "paused"
    #: Never ran to the end: its operation was cancelled (see docs/web.md "Jobs").
    CANCELLED = "cancelled"


#: A file with a job in one of these states is in progress: it may not be queued again.
ACTIVE_JOB_STATES = (JobState.QUEUED, JobState.RUNNING, JobState.PAUSED)
#: Jobs that will not change any more.
FINISHED_JOB_STATES = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class OperationKind(StrEnum):
    """What started a bulk operation (one row of `operations`, many jobs)."""

    INGEST = "ingest"  # `casescope ingest`, or a server-side folder import
    UPLOAD = "upload"  # files uploaded through the web app
    REINDEX = "reindex"
    SIGMA_ONLY = "sigma_only"
    IOC_ONLY = "ioc_only"
    RETRY = "retry"  # failed files processed again from scratch


class OperationState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"

    @property
    def is_terminal(self) -> bool:
        return self in (OperationState.CANCELLED, OperationState.COMPLETED)


class ExclusionKind(StrEnum):
    """What a per-case exclusion of Sigma hits is made of."""

    RULE = "rule"  # a rule's hits, all of them or where the event holds field values
    FILTER = "filter"  # a Sigma filter document (its rules, logsource and condition)
