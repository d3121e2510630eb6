"""Tables of the CLI's listings: Rich's Table layout at a small cost per row.

Rich's `Table` measures and renders every cell through its general machinery (Padding,
wrapping, `Segment.split_and_crop_lines`): about a millisecond of CPU per row, seconds for
`files` on a large case or `rules list` over a full Sigma snapshot (bench/cli.py --table).
`Listing` lays a table out as Rich's Table does (the same column widths, box, header, title,
justification, fold and no-wrap) and prints as Rich's Table would, but a row whose cells are
each one printable, unstyled line that fits its column is written as one padded line, with
no per-cell rendering; any other row (a cell to fold, cut, wrap, or a styled cell) and the
header are rendered by Rich itself. tests/unit/cli/test_tables.py checks that the output is
the same as Rich's Table's.

Every value goes through `shown()`: strings are printed literally, never read as Rich markup,
with control characters escaped, whoever wrote them.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from math import ceil
from typing import NamedTuple

from rich import box as boxes
from rich.box import Box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.table import Column
from rich.text import Text

from casescope.cli.common import escaped, shown

#: Spaces either side of a cell, as Rich's Table pads by default.
PAD = 2


class Justify(StrEnum):
    """How a column's cells sit in their width (a Rich `justify` value)."""

    LEFT = "left"
    RIGHT = "right"
    CENTER = "center"


class _Cell(NamedTuple):
    plain: str  # as `shown()` shows it
    width: int  # cells of its widest line, as Rich measures it
    simple: bool  # one printable unstyled line: may be written as it is
    styled: Text | None  # the Text given, with its styles

    @property
    def text(self) -> Text:
        return Text(self.plain) if self.styled is None else self.styled


def _cell(value: object) -> _Cell:
    if isinstance(value, Text):
        plain, styled = value.plain, value
        simple = not (value.spans or value.style or value.justify or value.overflow)
        simple = simple and not value.no_wrap
    else:  # no Text made for a cell that is written as it is
        plain, styled, simple = escaped(value), None, True
    if plain.isprintable():
        # Rich strips trailing spaces when it right-justifies or centres a line
        return _Cell(plain, cell_len(plain), simple and not plain.endswith(" "), styled)
    return _Cell(plain, max(map(cell_len, plain.splitlines()), default=0), False, styled)


class Listing:
    """A table of many rows: `Listing("id", Column("path", overflow="fold"), title=...)`,
    `add_row(...)` for each row, then `console.print(listing)`. Columns take Rich's
    `Column` options header, justify, no_wrap, overflow and min_width."""

    def __init__(
        self,
        *columns: str | Column,
        title: str | None = None,
        box: Box | None = boxes.HEAVY_HEAD,
        show_header: bool = True,
        expand: bool = False,
    ) -> None:
        if not columns:
            raise ValueError("a listing needs at least one column")
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        for column in self.columns:
            if column.width or column.max_width or column.ratio or column.style:
                raise ValueError(f"column {column.header!r}: width, ratio and style unsupported")
            if column.justify not in tuple(Justify):
                raise ValueError(f"column {column.header!r}: justify {column.justify!r}")
        self.title = title
        self.box = box
        self.show_header = show_header
        self.expand = expand
        self.rows: list[tuple[_Cell, ...]] = []
        self._header = tuple(_cell(c.header) for c in self.columns)
        self._natural: list[int | None] = [
            cell.width if show_header else None for cell in self._header
        ]

    def add_row(self, *values: object) -> None:
        """A row: Text as it is, anything else (None as empty) as `shown()` text."""
        if len(values) != len(self.columns):
            raise ValueError(f"{len(values)} values for {len(self.columns)} columns")
        row = tuple(map(_cell, values))
        natural = self._natural
        for index, cell in enumerate(row):
            known = natural[index]
            if known is None or cell.width > known:
                natural[index] = cell.width
        self.rows.append(row)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        edges = (len(self.columns) - 1 + 2) if self.box else 0
        widths = self.widths(options.max_width - edges)
        render_options = options.update(width=sum(widths) + edges, highlight=False, height=None)
        if self.title:
            title = shown(self.title)
            title.style = "table.title"
            yield from console.render(title, render_options.update(justify="center"))
        yield from _Renderer(self, console, render_options, widths).lines()

    def widths(self, max_width: int) -> list[int]:
        """Each column's width with its padding, as Rich's Table sets them (no ratios or
        fixed widths): the widest cell, then the wrappable columns narrowed, widest first,
        then all of them evenly, while the table is wider than `max_width`."""
        mins = [c.min_width for c in self.columns]
        widths = [_measure(n, max_width, m) or 1 for n, m in zip(self._natural, mins, strict=True)]
        table_width = sum(widths)
        if table_width > max_width:
            wrappable = [not c.no_wrap for c in self.columns]
            widths = _collapse(widths, wrappable, max_width)
            table_width = sum(widths)
            if table_width > max_width:
                widths = _reduce(table_width - max_width, [1] * len(widths), widths, widths)
                table_width = sum(widths)
            widths = [
                _measure(n, w, m) for n, w, m in zip(self._natural, widths, mins, strict=True)
            ]
        if table_width < max_width and self.expand:
            widths = [
                w + pad
                for w, pad in zip(widths, _spread(max_width - table_width, widths), strict=True)
            ]
        return widths


def _measure(natural: int | None, max_width: int, min_width: int | None) -> int:
    """A column's width in `max_width`, as Rich's Table measures it (Padding, then Text)."""
    if max_width < 1:
        return 0
    # no header and no row, or no room for the padding: all there is
    no_room = natural is None or max_width - PAD < 1
    width = max_width if no_room else min(natural + PAD, max_width)
    return width if min_width is None else max(width, min_width + PAD)


def _collapse(widths: list[int], wrappable: list[bool], max_width: int) -> list[int]:
    """Narrow the widest wrappable columns down towards the next widest until it fits."""
    excess = sum(widths) - max_width
    while any(wrappable) and excess > 0:
        widest = max(w for w, ok in zip(widths, wrappable, strict=True) if ok)
        second = max(
            (w for w, ok in zip(widths, wrappable, strict=True) if ok and w != widest), default=0
        )
        ratios = [1 if ok and w == widest else 0 for w, ok in zip(widths, wrappable, strict=True)]
        if not widest - second:
            break
        limit = min(excess, widest - second)
        widths = _reduce(excess, ratios, [limit] * len(widths), widths)
        excess = sum(widths) - max_width
    return widths


def _reduce(total: int, ratios: list[int], limits: list[int], values: list[int]) -> list[int]:
    """Take `total` off `values` in proportion to `ratios`, at most `limits` each (rounded
    as Rich's `ratio_reduce` rounds, so that widths match its tables')."""
    ratios = [r if limit else 0 for r, limit in zip(ratios, limits, strict=True)]
    left, ratio_left = total, sum(ratios)
    result = []
    for ratio, limit, value in zip(ratios, limits, values, strict=True):
        if ratio and ratio_left > 0:
            taken = min(limit, round(ratio * left / ratio_left))
            result.append(value - taken)
            left -= taken
            ratio_left -= ratio
        else:
            result.append(value)
    return result


def _spread(total: int, ratios: list[int]) -> list[int]:
    """`total` shared in proportion to `ratios`, rounded up as Rich's `ratio_distribute`."""
    left, ratio_left = total, sum(ratios)
    shares = []
    for ratio in ratios:
        share = ceil(ratio * left / ratio_left) if ratio_left > 0 else left
        shares.append(share)
        ratio_left -= ratio
        left -= share
    return shares


class _Renderer:
    """The lines of one Listing at set widths: box, header, rows."""

    def __init__(
        self, listing: Listing, console: Console, options: ConsoleOptions, widths: list[int]
    ) -> None:
        self.listing, self.console, self.options, self.widths = listing, console, options, widths
        box = listing.box
        if box is not None:
            box = box.substitute(options, safe=console.safe_box)
            box = box if listing.show_header else box.get_plain_headed_box()
        self.box = box
        self.justify = [Justify(c.justify) for c in listing.columns]

    def lines(self) -> Iterator[Segment]:
        listing, box, widths = self.listing, self.box, self.widths
        rows: list[tuple[_Cell, ...]] = list(listing.rows)
        if listing.show_header:
            rows.insert(0, listing._header)
        if box:
            yield Segment(box.get_top(widths))
            yield Segment.line()
        last = len(rows) - 1
        for index, row in enumerate(rows):
            edge = self._edges(0 if index == 0 else (2 if index == last else 1))
            header = listing.show_header and index == 0
            yield from self._row(row, edge, header)
            if box and header:
                yield Segment(box.get_row(widths, "head", edge=True))
                yield Segment.line()
        if box:
            yield Segment(box.get_bottom(widths))
            yield Segment.line()

    def _edges(self, level: int) -> tuple[str, str, str]:
        """Left edge, divider, right edge of a head (0), middle (1) or foot (2) row."""
        box = self.box
        if box is None:
            return "", "", ""
        return (
            (box.head_left, box.head_vertical, box.head_right),
            (box.mid_left, box.mid_vertical, box.mid_right),
            (box.foot_left, box.foot_vertical, box.foot_right),
        )[level]

    def _padded(self, row: tuple[_Cell, ...]) -> list[str | None]:
        """Each cell padded to its width, or None for one that Rich must render (styled,
        on several lines, or too wide: to fold, wrap or cut)."""
        parts: list[str | None] = []
        for cell, width, justify in zip(row, self.widths, self.justify, strict=True):
            gap = width - PAD - cell.width
            if not cell.simple or gap < 0:
                parts.append(None)
                continue
            if justify is Justify.LEFT:
                left = 0
            elif justify is Justify.RIGHT:
                left = gap
            else:
                left = gap // 2
            parts.append(f"{' ' * (left + 1)}{cell.plain}{' ' * (gap - left + 1)}")
        return parts

    def _row(
        self, row: tuple[_Cell, ...], edge: tuple[str, str, str], header: bool
    ) -> Iterator[Segment]:
        """The lines of a row: one padded string when every cell is, else each cell that
        needs it rendered by Rich as its Table renders it (the header, styled, always)."""
        parts: list[str | None] = [None] * len(row) if header else self._padded(row)
        if None not in parts:
            yield Segment(edge[0] + edge[1].join(parts) + edge[2])  # type: ignore[arg-type]
            yield Segment.line()
            return
        style = self.console.get_style("table.header") if header else Style.null()
        cells = [
            [[Segment(part)]] if part is not None else self._render(cell, index, style)
            for index, (cell, part) in enumerate(zip(row, parts, strict=True))
        ]
        height = max(1, *(len(lines) for lines in cells))
        if header:  # as Rich's Table: a header sits at the bottom of its row
            cells = [
                Segment.align_bottom(c, w, height, style)
                for c, w in zip(cells, self.widths, strict=True)
            ]
        cells = [Segment.set_shape(c, w, height) for c, w in zip(cells, self.widths, strict=True)]
        left, divider, right = (Segment(part) for part in edge)
        for line_no in range(height):
            yield left
            for index, lines in enumerate(cells):
                if index:
                    yield divider
                yield from lines[line_no]
            yield right
            yield Segment.line()

    def _render(self, cell: _Cell, index: int, style: Style) -> list[list[Segment]]:
        """A cell's lines as Rich's Table renders them: an unstyled line wrapped, folded or
        cut by `Text.wrap` (what Rich's Text does in a Padding), any other by Rich whole."""
        column, width = self.listing.columns[index], self.widths[index]
        if cell.simple and not style and width > PAD:
            lines = Text(cell.plain).wrap(
                self.console, width - PAD, justify=column.justify, overflow=column.overflow,
                no_wrap=column.no_wrap,
            )  # fmt: skip
            return [[Segment(f" {_filled(line.plain, width - PAD)} ")] for line in lines]
        options = self.options.update(
            width=width, justify=column.justify, no_wrap=column.no_wrap,
            overflow=column.overflow, height=None, highlight=False,
        )  # fmt: skip
        return self.console.render_lines(Padding(cell.text, (0, 1)), options, style=style)


def _filled(text: str, width: int) -> str:
    return text + " " * (width - cell_len(text))
