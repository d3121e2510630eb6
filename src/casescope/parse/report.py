"""What a parse reports besides its events: warnings, skipped records, a fatal error."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

MAX_WARNINGS = 50


@dataclass
class ParseReport:
    """Collected while a file is parsed; kept on the file so the analyst sees it."""

    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0
    skipped: int = 0  # records that could not be read at all
    error: str | None = None  # the file could not be read to its end

    def warn(self, message: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("(further warnings not kept)")
        logger.debug("parse warning: %s", message)

    def skip(self, message: str) -> None:
        self.skipped += 1
        self.warn(message)
