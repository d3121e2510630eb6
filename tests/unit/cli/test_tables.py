"""`Listing` prints what Rich's Table printed for the same rows (the same text, and on a
colour terminal the same style on every visible character), at every width, for the options the
CLI's listings use; and every value is shown literally, control characters escaped."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich import box as boxes
from rich.cells import cell_len
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from casescope.cli.tables import Listing

# words of ASCII, CJK (two cells each), markup-like brackets, tabs and newlines; spaces
WORDS = st.text(alphabet="ab[]/=-.:\\漢字\t\n é", min_size=0, max_size=30)
CELLS = st.one_of(
    WORDS,
    st.integers(0, 10**12).map(lambda n: f"{n:,}"),
    st.text(alphabet="abcdef0123456789/", min_size=40, max_size=120),  # a long path
    st.text(alphabet="abc 漢", max_size=15),
    WORDS.map(lambda s: Text(s, style="red")),
)
COLUMNS = st.builds(
    Column,
    header=st.text(alphabet="abc z漢", min_size=1, max_size=12),
    justify=st.sampled_from(["left", "right", "center"]),
    no_wrap=st.booleans(),
    overflow=st.sampled_from(["fold", "ellipsis"]),
    min_width=st.one_of(st.none(), st.integers(1, 20)),
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict, list[Column], list[list[object]]]:
    columns = draw(st.lists(COLUMNS, min_size=1, max_size=8))
    rows = draw(st.lists(st.lists(CELLS, min_size=len(columns), max_size=len(columns))))
    options = {
        "title": draw(st.one_of(st.none(), st.text(alphabet="ab c", min_size=1))),
        "box": draw(st.sampled_from([boxes.HEAVY_HEAD, boxes.SIMPLE_HEAD, None])),
        "show_header": draw(st.booleans()),
        "expand": draw(st.booleans()),
    }
    return options, columns, rows


def _copy(column: Column) -> Column:
    return Column(
        column.header,
        justify=column.justify,
        no_wrap=column.no_wrap,
        overflow=column.overflow,
        min_width=column.min_width,
    )


def _cell(value: object) -> Text:
    return value if isinstance(value, Text) else Text(str(value))


def _pair(options: dict, columns: list[Column], rows: list[list[object]]) -> tuple:
    rich_table = Table(*map(_copy, columns), **options)
    listing = Listing(*map(_copy, columns), **options)
    for row in rows:
        rich_table.add_row(*map(_cell, row))
        listing.add_row(*row)
    return rich_table, listing


def _styled_chars(console: Console, renderable: object) -> list[tuple[str, str]]:
    """Each visible character printed and its style (no style used here shows on a space)."""
    lines = console.render_lines(renderable, pad=False, new_lines=True)
    chars = ((ch, seg.style) for line in lines for seg in line for ch in seg.text)
    return [(ch, str(style or "none")) for ch, style in chars if not ch.isspace()]


@settings(max_examples=400, deadline=None)
@given(tables(), st.integers(10, 200))
def test_a_listing_prints_what_a_rich_table_prints(table: tuple, width: int) -> None:
    rich_table, listing = _pair(*table)
    plain = Console(file=io.StringIO(), width=width, color_system=None)
    assert _print(plain, listing) == _print(plain, rich_table)
    colour = Console(file=io.StringIO(), width=width, force_terminal=True, legacy_windows=False)
    assert _styled_chars(colour, listing) == _styled_chars(colour, rich_table)


def _print(console: Console, renderable: object) -> str:
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def _plain(listing: Listing, width: int = 160) -> list[str]:
    return _print(Console(file=io.StringIO(), width=width, color_system=None), listing).splitlines()


def test_values_are_shown_literally_with_control_characters_escaped() -> None:
    listing = Listing("name", "note", title="[bold]t\x1b]0;x\x07")
    listing.add_row("[red]x[/red] y", "a\x1b[2Jb\x9b31mc")
    listing.add_row(Text("[/]"), None)
    out = "\n".join(_plain(listing))
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
    assert "[bold]t\\x1b]0;x\\x07" in out  # the title too
    assert "[red]x[/red] y" in out and "a\\x1b[2Jb\\x9b31mc" in out and "[/]" in out


def test_numbers_align_right_and_wide_characters_take_two_cells() -> None:
    listing = Listing("name", Column("events", justify="right"), "sha256", box=None)
    for name, events in (("漢字のファイル", "1,234,567"), ("a", "7"), ("ab漢", "12")):
        listing.add_row(name, events, "0f3a")
    header, *rows = _plain(listing)
    ends = {cell_len(line[: line.index(events) + len(events)]) for line, events in
            zip(rows, ("1,234,567", "7", "12"), strict=True)}  # fmt: skip
    assert ends == {cell_len(header[: header.index("events") + len("events")])} | ends
    assert len(ends) == 1
    starts = {cell_len(line[: line.index("0f3a")]) for line in rows}
    assert starts == {cell_len(header[: header.index("sha256")])}


def test_a_long_path_folds_and_a_no_wrap_column_is_cut_not_folded() -> None:
    path = "/evidence/" + "/".join(f"folder{n:02d}" for n in range(12)) + "/Security.evtx"
    listing = Listing(Column("id", no_wrap=True), Column("path", overflow="fold"))
    listing.add_row("12345", path)
    lines = _plain(listing, width=40)
    assert all(cell_len(line) <= 40 for line in lines) and len(lines) > 6
    start = lines[1].index("path")
    assert "".join(line[start:].rstrip(" │") for line in lines[3:-1]) == path
    sha256 = "0f" * 32
    listing = Listing(Column("sha256", no_wrap=True), Column("path", overflow="fold"))
    listing.add_row(sha256, "/a")
    lines = _plain(listing, width=40)
    assert lines[3].startswith("│ 0f0f") and lines[3].count("…") == 1  # cut, on one line
    assert lines[4].startswith("└")


def test_an_empty_listing_prints_its_header() -> None:
    listing = Listing(Column("id", justify="right"), "path", title="files")
    table = Table(Column("id", justify="right"), "path", title="files")
    console = Console(file=io.StringIO(), width=80, color_system=None)
    assert _print(console, listing) == _print(console, table)
    assert [line.strip(" ┃━┏┓┗┛┡┩└┘─┳╇┴") for line in _plain(listing)][:3] == [
        "files",
        "",
        "id ┃ path",
    ]


def test_text_that_would_reorder_the_screen_is_shown_as_escapes() -> None:
    """A name like `invoice<RLO>fdp.exe` shows as `invoice.pdf` reversed on a terminal that
    honours the override; the listing shows the escape instead (bidi controls, separators)."""
    listing = Listing("name")
    listing.add_row("invoice\u202efdp.exe")
    listing.add_row("a\u2066b\u2069c\u2028d\u200f")
    out = "\n".join(_plain(listing, 80))
    assert "invoice\\u202efdp.exe" in out
    assert "a\\u2066b\\u2069c\\u2028d\\u200f" in out
    assert not any(c in out for c in "\u202e\u2066\u2069\u2028\u200f")
