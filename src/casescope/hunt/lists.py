"""Import IOC lists: CSV (`type,value[,comment]`) and plain lists (one value per line).

A bad line never fails the import: it is reported with its line number and reason, and the
good lines are kept. Duplicates (same type and normalised value) are kept once.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from casescope.hunt.ioc import Ioc, IocError, IocType
from casescope.hunt.normalise import normalise

_HEADER = ("type", "value")


@dataclass(frozen=True)
class IocLineError:
    """One line that could not be imported (line numbers start at 1)."""

    line: int
    text: str
    message: str


@dataclass
class IocImport:
    """What an import produced: the valid IOCs, the bad lines, and how many were repeats."""

    iocs: list[Ioc] = field(default_factory=list)
    errors: list[IocLineError] = field(default_factory=list)
    duplicates: int = 0
    _seen: set[tuple[IocType, str]] = field(default_factory=set, init=False, repr=False)

    def add(self, ioc: Ioc) -> None:
        key = (ioc.type, ioc.normalised)
        if key in self._seen:
            self.duplicates += 1
            return
        self._seen.add(key)
        self.iocs.append(ioc)


def parse_ioc_csv(text: str) -> IocImport:
    """Read `type,value[,comment]` rows; an empty type is inferred; a header row is skipped.

    Type names may be aliases (`ipv4`, `hostname`, `hash`, ...; see `ioc.TYPE_ALIASES`).
    Lines starting with `#` are comments.
    """
    result = IocImport()
    reader = csv.reader(io.StringIO(text))
    line, first = 1, True
    for row in reader:
        start, line = line, reader.line_num + 1
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if first and tuple(c.lower() for c in cells[:2]) == _HEADER:
            first = False
            continue
        first = False
        if len(cells) < 2 or len(cells) > 3:
            message = f"expected 2 or 3 columns (type,value[,comment]), got {len(cells)}"
            result.errors.append(IocLineError(start, ",".join(row), message))
            continue
        comment = cells[2] if len(cells) == 3 else None
        _add(result, start, ",".join(row), cells[1], cells[0] or None, comment)
    return result


def parse_ioc_list(text: str, ioc_type: IocType | str | None = None) -> IocImport:
    """Read one value per line (type inferred unless `ioc_type`); `#` starts a comment line."""
    result = IocImport()
    for number, raw in enumerate(text.splitlines(), start=1):
        value = raw.strip()
        if value and not value.startswith("#"):
            _add(result, number, raw, value, ioc_type, None)
    return result


def _add(
    result: IocImport,
    line: int,
    text: str,
    value: str,
    ioc_type: IocType | str | None,
    comment: str | None,
) -> None:
    try:
        result.add(normalise(value, ioc_type, comment))
    except IocError as exc:
        result.errors.append(IocLineError(line, text, str(exc)))
