"""The project's exceptions: one root, a few subclasses callers actually distinguish."""

from __future__ import annotations

import errno


class CasescopeError(Exception):
    """Root of every error casescope raises on purpose; its message is shown to the user."""


class NotFoundError(CasescopeError):
    """A case, file or job that was asked for does not exist."""


class CaseClosedError(CasescopeError):
    """A change to a closed case: it is read-only until it is reopened (web: 409)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"case {name!r} is closed and read-only: reopen it (case settings, or "
            "`casescope case reopen`) to change it"
        )


class EvidenceError(CasescopeError):
    """Evidence cannot be taken in or read (missing, unreadable, unsafe)."""


class PermanentError(CasescopeError):
    """A processing failure that retrying cannot fix (e.g. the evidence file is gone)."""


class IndexBusyError(CasescopeError):
    """Another process owns the embedded event index."""


class IndexConfigError(CasescopeError):
    """The event index cannot be used as configured: CASESCOPE_INDEX_URL is malformed, its
    server cannot be reached or refuses the login, or its table is of another DDL version.
    The message names the setting; it is raised when the index is opened, before any work."""


class IndexUnavailableError(CasescopeError):
    """The event index server stopped answering mid-run (a dropped connection): no file's
    fault, so the loader leaves the files pending for a later load instead of failing them."""


class IndexMemoryError(CasescopeError):
    """A query needed more memory than the index's budget allows at that moment (its own
    size, or background merges holding part of the budget): worth retrying shortly."""


class QueryTimeoutError(CasescopeError):
    """A query ran past its time bound (CASESCOPE_QUERY_TIMEOUT_SECONDS, or the longer
    bound of exports and hunts) and was stopped: the caller should narrow it."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"query took too long ({seconds:g} s): narrow the time range or the query")
        self.seconds = seconds


#: errno values of a write that failed for want of space (or of a file size limit).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def disk_full_message(exc: BaseException) -> str | None:
    """A clear message when `exc` is a write that ran out of disk space, else None.

    Retrying cannot help until space is freed, so callers fail the work at once and say so.
    """
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return (
            f"disk full or file size limit reached ({exc}); free space, then process the "
            "file again (`casescope reindex --case CASE --file ID`)"
        )
    return None


class DatabaseUnavailableError(CasescopeError):
    """The metadata DB (CASESCOPE_DATABASE_URL) stayed unreachable for longer than
    CASESCOPE_DB_OUTAGE_SECONDS while a worker, pool or ingest waited for it to come back."""


class HomeUnusableError(CasescopeError):
    """CASESCOPE_HOME (or a folder under it) cannot be created or written."""
