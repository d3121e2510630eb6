"""Every fixed set of values the metadata DB stores, as enums (never bare string literals)."""

from __future__ import annotations

from enum import StrEnum

from casescope.errors import CasescopeError


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
    #: Its job was cancelled before it ran to the end, and it has no earlier outcome to go
    #: back to: not processed, not failed either (`retry` processes it like a failed file).
    CANCELLED = "cancelled"
    #: Refused at intake: not evidence by its content (a README beside the logs). Never
    #: processed, never retried; not a failure of casescope's.
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_FILE_STATES


#: Files that will not change without someone asking (re-process, retry).
TERMINAL_FILE_STATES = (
    FileStatus.COMPLETED,
    FileStatus.FAILED,
    FileStatus.CANCELLED,
    FileStatus.REJECTED,
)
#: Files that `retry` processes again from scratch.
RETRYABLE_FILE_STATES = (FileStatus.FAILED, FileStatus.CANCELLED)


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


class SliceState(StrEnum):
    """A slice of a large EVTX file's job attempt (jobs/slices.py)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    #: Its parse read another count of events than its chunk headers name: the file's
    #: `seq` cannot be known from them, so the job's next attempt parses the file whole.
    INVALID = "invalid"


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


class CaseStatus(StrEnum):
    """Whether a case may still change: a closed case is read-only until it is reopened."""

    OPEN = "open"
    CLOSED = "closed"


class ExclusionKind(StrEnum):
    """What a per-case exclusion of Sigma hits is made of."""

    RULE = "rule"  # a rule's hits, all of them or where the event holds field values
    FILTER = "filter"  # a Sigma filter document (its rules, logsource and condition)


class AuditKind(StrEnum):
    """Who or what an audit row is about (the audit page shows them apart)."""

    STEP = "step"  # one pipeline step of one file, with its time and event count
    ACTION = "action"  # something a person did (web, CLI or API token)
    SYSTEM = "system"  # something casescope did on its own account (intake, worker pool)


class AuditAction(StrEnum):
    """What an audit row records, named `noun.verb`: every row ever written is one of these.

    Rows written before migration 0020 used other names; `parse` still takes them (they
    are deprecated in `casescope audit --help`) and the migration renamed the stored rows.
    """

    STEP_ESTIMATING = "step.estimating"
    STEP_INDEXING = "step.indexing"
    STEP_SIGMA = "step.sigma"
    STEP_IOC = "step.ioc"

    INTAKE_REGISTERED = "intake.registered"  # a batch of files taken in
    INTAKE_REFUSED = "intake.refused"  # one path refused at intake, with the reason
    INTAKE_UPLOAD = "intake.upload"
    INTAKE_IMPORT_FOLDER = "intake.import_folder"
    POOL_FAILED = "pool.failed"  # the worker pool kept dying as it started

    CASE_CREATE = "case.create"
    CASE_GRANT = "case.grant"
    CASE_REVOKE = "case.revoke"

    EVENT_EXPORT = "event.export"
    EVENT_TAG = "event.tag"
    EVENT_UNTAG = "event.untag"
    EVENT_STAR = "event.star"
    EVENT_UNSTAR = "event.unstar"
    EVENT_HIDDEN = "event.hidden"
    EVENT_UNHIDDEN = "event.unhidden"

    QUEUE_FULL = "queue.full"  # files queued again by a re-process or a retry
    QUEUE_REINDEX = "queue.reindex"
    QUEUE_SIGMA_ONLY = "queue.sigma_only"
    QUEUE_IOC_ONLY = "queue.ioc_only"
    OPERATION_PAUSE = "operation.pause"
    OPERATION_RESUME = "operation.resume"
    OPERATION_CANCEL = "operation.cancel"

    RULES_IMPORT = "rules.import"
    RULES_ENABLE = "rules.enable"
    RULES_DISABLE = "rules.disable"
    RULES_DELETE = "rules.delete"  # a whole rule set; detail: the rules and hits removed
    RULES_PLACEHOLDERS = "rules.placeholders"
    EXCLUSION_ADD = "exclusion.add"
    EXCLUSION_REMOVE = "exclusion.remove"
    EXCLUSION_APPLY = "exclusion.apply"

    IOC_ADD = "ioc.add"
    IOC_REMOVE = "ioc.remove"
    IOC_ENABLE = "ioc.enable"
    IOC_DISABLE = "ioc.disable"
    IOC_IMPORT = "ioc.import"
    IOC_INDEX_HUNT = "ioc.index_hunt"  # the index hunted for new or re-enabled IOCs

    USER_CREATE = "user.create"
    USER_ENABLE = "user.enable"
    USER_DISABLE = "user.disable"
    USER_DELETE = "user.delete"
    USER_ROLE = "user.role"
    USER_PASSWORD_RESET = "user.password_reset"
    USER_PASSWORD = "user.password"
    USER_TIMEZONE = "user.timezone"
    USER_LOGIN = "user.login"
    USER_LOGIN_FAILED = "user.login_failed"
    USER_LOGOUT = "user.logout"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    NOTE_ADD = "note.add"  # a note (comment) written on an event
    NOTE_EDIT = "note.edit"
    NOTE_DELETE = "note.delete"

    SEARCH_SHARE = "search.share"  # a saved search shared with the case, or unshared
    SEARCH_CHANGE = "search.change"  # a saved search renamed, or deleted, by another user
    STORY_ADD = "story.add"  # events or a text block added to the case story
    STORY_EDIT = "story.edit"
    STORY_MOVE = "story.move"
    STORY_REMOVE = "story.remove"
    REPORT_EXPORT = "report.export"
    CASE_UPDATE = "case.update"  # renamed, described, or given another owner
    CASE_CLOSE = "case.close"
    CASE_REOPEN = "case.reopen"
    CASE_DELETE = "case.delete"  # detail: the name and the counts removed
    CASE_EXPORT = "case.export"  # detail: the bundle written, its members and checksum
    CASE_IMPORT = "case.import"  # detail: the bundle read, its case's name there, counts

    @property
    def kind(self) -> AuditKind:
        if self in _STEP_ACTIONS.values():
            return AuditKind.STEP
        return AuditKind.SYSTEM if self in _SYSTEM_ACTIONS else AuditKind.ACTION

    @property
    def is_pipeline_step(self) -> bool:
        return self.kind is AuditKind.STEP

    @classmethod
    def step(cls, status: FileStatus) -> AuditAction:
        """The row of the pipeline step that runs while a file has `status`."""
        return _STEP_ACTIONS[status]

    @classmethod
    def queued(cls, operation: Operation) -> AuditAction:
        """The row of files queued again for `operation`."""
        return _QUEUE_ACTIONS[operation]

    @classmethod
    def parse(cls, text: str) -> AuditAction:
        """An action from what a user typed: its name, or a deprecated name of before 0020."""
        name = text.strip().lower()
        if name in LEGACY_AUDIT_ACTIONS:
            return LEGACY_AUDIT_ACTIONS[name]
        try:
            return cls(name)
        except ValueError:
            choices = ", ".join(action.value for action in cls)
            raise CasescopeError(f"action must be one of {choices}, not {text[:60]!r}") from None


_STEP_ACTIONS = {
    FileStatus.ESTIMATING: AuditAction.STEP_ESTIMATING,
    FileStatus.INDEXING: AuditAction.STEP_INDEXING,
    FileStatus.SIGMA: AuditAction.STEP_SIGMA,
    FileStatus.IOC: AuditAction.STEP_IOC,
}
_QUEUE_ACTIONS = {
    Operation.FULL: AuditAction.QUEUE_FULL,
    Operation.REINDEX: AuditAction.QUEUE_REINDEX,
    Operation.SIGMA_ONLY: AuditAction.QUEUE_SIGMA_ONLY,
    Operation.IOC_ONLY: AuditAction.QUEUE_IOC_ONLY,
}
_SYSTEM_ACTIONS = frozenset(
    (AuditAction.INTAKE_REGISTERED, AuditAction.INTAKE_REFUSED, AuditAction.POOL_FAILED)
)

#: The names rows had before migration 0020 (which renamed them), still taken as filters.
LEGACY_AUDIT_ACTIONS = {
    "intake": AuditAction.INTAKE_REGISTERED,
    "intake_refused": AuditAction.INTAKE_REFUSED,
    "upload": AuditAction.INTAKE_UPLOAD,
    "import_folder": AuditAction.INTAKE_IMPORT_FOLDER,
    "export": AuditAction.EVENT_EXPORT,
    "estimating": AuditAction.STEP_ESTIMATING,
    "indexing": AuditAction.STEP_INDEXING,
    "sigma": AuditAction.STEP_SIGMA,
    "ioc": AuditAction.STEP_IOC,
}
