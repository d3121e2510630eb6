"""The project's exceptions: one root, a few subclasses callers actually distinguish."""

from __future__ import annotations


class CasescopeError(Exception):
    """Root of every error casescope raises on purpose; its message is shown to the user."""


class NotFoundError(CasescopeError):
    """A case, file or job that was asked for does not exist."""


class EvidenceError(CasescopeError):
    """Evidence cannot be taken in or read (missing, unreadable, unsafe)."""


class PermanentError(CasescopeError):
    """A processing failure that retrying cannot fix (e.g. the evidence file is gone)."""


class IndexBusyError(CasescopeError):
    """Another process owns the embedded event index."""
