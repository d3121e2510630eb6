"""What the CLI calls: resolve both sides, check them, run phases, verify, report status.

Rules for a target that holds data already (docs/migration.md, "A target with data"): keys
are kept, so a source case whose name the target uses for another case, a source user whose
name belongs to another target user, and any row whose key the target holds with other
content stop the run with an error naming them; nothing is overwritten or renamed.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from casescope.config import Settings
from casescope.migrate import checkpoints
from casescope.migrate.endpoints import (
    MigrationError,
    Source,
    check_distinct,
    check_source,
    describe,
    open_source,
    open_target,
    settings_from,
)
from casescope.migrate.events import (
    DEFAULT_BATCH_FILES,
    DEFAULT_JOBS,
    EventsContext,
    EventsReport,
    copy_events,
)
from casescope.migrate.functional import (
    check_login,
    check_token,
    source_keyed,
    verify_events,
)
from casescope.migrate.keys import KeyMap, keymap_for, stored_keymap
from casescope.migrate.phases import Phase, Scope, canonical
from casescope.migrate.redo import forget_case
from casescope.migrate.rows import DEFAULT_BATCH_ROWS, CopyContext, copy_phase
from casescope.migrate.verify import (
    Expect,
    VerifyReport,
    measure_source,
    measure_target,
    verify_tables,
)
from casescope.model.db import Database
from casescope.model.enums import ACTIVE_JOB_STATES
from casescope.model.tables import Case, EvidenceFile, Job
from casescope.model.users import User
from casescope.services.case_lifecycle import MAX_NAME_LENGTH
from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

#: The checkpoint a later phase needs done for each case: (phase, table).
_CASE_DONE = {Phase.CONFIG: "cases", Phase.FINDINGS: "evidence_files"}


@dataclass
class Endpoints:
    source: Source
    target: Database
    source_id: str
    cases: dict[int, str]  # the selected source cases: id -> name
    scope: Scope = Scope.DEPLOYMENT
    #: Source case id -> the name it takes on the target (`--as`); others keep theirs.
    rename: dict[int, str] = field(default_factory=dict)
    #: Rows get new keys on the target (`keys`): `--as`, and every case import.
    move_keys: bool = False
    #: The new keys, once computed (by `run`) or read from the target's checkpoints.
    keymap: KeyMap | None = None
    #: The target's index, when the caller holds it open (see `EventsContext.index`).
    target_index: EventIndex | None = None

    def target_name(self, case_id: int) -> str:
        return self.rename.get(case_id, self.cases[case_id])


def _cases(source: Source, names: list[str] | None) -> dict[int, str]:
    with source.engine.connect() as connection:
        found = {row[0]: row[1] for row in connection.execute(select(Case.id, Case.name))}
    if not names:
        return dict(sorted(found.items()))
    by_name = {name: case_id for case_id, name in found.items()}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise MigrationError(f"no case named {', '.join(map(repr, unknown))} on the source")
    return {by_name[name]: name for name in names}


def _expected_case_id(ends: Endpoints, case_id: int) -> int | None:
    """The id a case of the target with the name the source case takes there may have: the
    id this copy gave it (kept, or moved by `keys`), once this copy has put it there; None
    before (any case of that name is then another one)."""
    if ends.move_keys:
        return None if ends.keymap is None else ends.keymap.key("cases", case_id)
    return case_id if _same_case(ends, case_id) else None


def _same_case(ends: Endpoints, case_id: int) -> bool:
    """Whether the target's case of this id is the source's (copied before: same row)."""
    table = Case.__table__
    query = select(table).where(table.c.id == case_id)
    with ends.source.engine.connect() as connection:
        mine = connection.execute(query).mappings().one()
    with ends.target.read() as session:
        there = session.execute(query).mappings().one_or_none()
    target_home = ends.target.settings.home_dir
    return there is not None and canonical(table, there, target_home) == canonical(
        table, mine, ends.source.home
    )


def check_conflicts(ends: Endpoints) -> None:
    """Refuse case names the target uses for other cases and, when keys are kept, user
    names the target uses for rows of other keys (when keys move, users are matched by
    name)."""
    with ends.target.read() as session:
        theirs = {row[1]: row[0] for row in session.execute(select(Case.id, Case.name))}
        users = {row[1]: row[0] for row in session.execute(select(User.id, User.username))}
    for case_id in ends.cases:
        name = ends.target_name(case_id)
        if name in theirs and theirs[name] != _expected_case_id(ends, case_id):
            raise MigrationError(
                f"the target has a case named {name!r} already (id {theirs[name]}): bring "
                "this one in under another name with --as NEW_NAME, delete or rename the "
                "target's case, or leave it out with --cases"
            )
    if ends.move_keys:
        return
    with ends.source.engine.connect() as connection:
        mine = {row[1]: row[0] for row in connection.execute(select(User.id, User.username))}
    for name, user_id in mine.items():
        if users.get(name, user_id) != user_id:
            raise MigrationError(
                f"the target has a user named {name!r} already (id {users[name]}, the source's "
                f"is {user_id}): delete that user on the target first"
            )


def _check_idle_queue(source: Source, case_ids: list[int]) -> None:
    """Refuse a source with jobs in progress: any job, or for a live source (a case
    export) a job of the cases copied."""
    query = select(Job.id).where(Job.state.in_(ACTIVE_JOB_STATES)).limit(1)
    if source.live:
        of_cases = select(EvidenceFile.id).where(EvidenceFile.case_id.in_(case_ids))
        query = query.where(Job.file_id.in_(of_cases))
    with source.engine.connect() as connection:
        busy = connection.scalar(query)
    if busy is not None:
        raise MigrationError(
            "the source has queued or running jobs: let them finish (or cancel them) first"
        )


@dataclass(frozen=True)
class Selection:
    """Which cases (None: all), how much of the global tables, and renames by case name."""

    cases: list[str] | None = None
    scope: Scope = Scope.DEPLOYMENT
    rename: dict[str, str] = field(default_factory=dict)
    #: New keys on the target (`keys`); implied by a rename.
    move_keys: bool = False


def checked_case_name(name: str) -> str:
    """A name `--as` may give a case: not empty, not longer than a case name may be."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise MigrationError(f"--as needs a case name of 1 to {MAX_NAME_LENGTH} characters")
    return name


def _renames(cases: dict[int, str], rename: dict[str, str]) -> dict[int, str]:
    if rename and len(cases) != 1:
        raise MigrationError("--as renames one case: name exactly one with --cases")
    return {case_id: rename[name] for case_id, name in cases.items() if name in rename}


@contextmanager
def open_endpoints(
    source_settings: Settings, target_settings: Settings, selection: Selection
) -> Iterator[Endpoints]:
    live = selection.scope is Scope.CASE  # a case export reads this deployment as it runs
    check_distinct(source_settings, target_settings)
    check_source(source_settings, live)  # before the target's home is made
    target = open_target(target_settings)
    try:
        with open_source(source_settings, target_settings.tmp_dir, live) as source:
            cases = _cases(source, selection.cases)
            rename = _renames(cases, selection.rename)
            source_id = describe(source_settings)
            ends = Endpoints(source, target, source_id, cases, selection.scope, rename)
            ends.move_keys = selection.move_keys or bool(rename)
            if ends.move_keys:
                ends.keymap = stored_keymap(target, source_id)
            yield ends
    finally:
        target.dispose()


@contextmanager
def endpoints(
    source_path: Path, target_path: Path, cases: list[str] | None, rename: str | None = None
) -> Iterator[Endpoints]:
    """The endpoints of `casescope migrate`: each side a home or an env file; `rename`
    (`--as`) the name the one case of `cases` takes on the target."""
    if rename is not None and (not cases or len(cases) != 1):
        raise MigrationError("--as renames one case: name exactly one with --cases")
    if rename is not None:
        rename = checked_case_name(rename)
    selection = Selection(cases, rename={cases[0]: rename} if cases and rename else {})
    with open_endpoints(settings_from(source_path), settings_from(target_path), selection) as ends:
        yield ends


def _require_before(ends: Endpoints, phase: Phase) -> None:
    for earlier in Phase:
        if earlier.order >= phase.order:
            return
        table = _CASE_DONE[earlier]
        for case_id, name in ends.cases.items():
            if not checkpoints.unit_done(ends.target, ends.source_id, earlier, table, case_id):
                raise MigrationError(
                    f"phase {phase.value} needs phase {earlier.value} done for case {name!r} "
                    f"first: run `casescope migrate run --phase {earlier.value}`"
                )


def _copy_rule_cache(source: Settings, target: Settings) -> None:
    """The compiled active rule set, so the target's workers run the same rules at once
    (its rule ids are the source's: keys are kept)."""
    folder = source.home_dir / "rules"
    if folder.is_dir():
        shutil.copytree(folder, target.home_dir / "rules", dirs_exist_ok=True)


@dataclass
class Progress:
    """Callbacks of a run: rows of a table copied; files and bytes of the events phase."""

    on_rows: Callable[[str, int], None] | None = None
    on_file: Callable[[int, int], None] | None = None
    on_phase: Callable[[Phase], None] | None = None


@dataclass(frozen=True)
class Batches:
    """Rows per transaction of the metadata phases; files per index load of the events, and
    the threads that copy them."""

    rows: int = DEFAULT_BATCH_ROWS
    files: int = DEFAULT_BATCH_FILES
    #: Load the events into the target's index; False for a case bundle, whose files are
    #: marked loaded: their segments, copied with them, hold their events.
    load: bool = True
    #: Threads copying and hashing a batch's files in the events phase.
    jobs: int = DEFAULT_JOBS


def run_phase(
    ends: Endpoints, phase: Phase, progress: Progress, sizes: Batches
) -> EventsReport | None:
    _require_before(ends, phase)
    if progress.on_phase is not None:
        progress.on_phase(phase)
    case_ids = list(ends.cases)
    if phase is Phase.EVENTS:
        events = EventsContext(ends.source, ends.target, ends.source_id, case_ids, sizes.files)
        events.on_file = progress.on_file
        events.load, events.keymap, events.jobs = sizes.load, ends.keymap, sizes.jobs
        events.index = ends.target_index
        return copy_events(events)
    rows = CopyContext(ends.source, ends.target, ends.source_id, case_ids, sizes.rows)
    rows.on_rows = progress.on_rows
    rows.scope, rows.rename, rows.keymap = ends.scope, ends.rename, ends.keymap
    copy_phase(rows, phase)
    if phase is Phase.CONFIG and ends.scope is Scope.DEPLOYMENT and not ends.move_keys:
        _copy_rule_cache(ends.source.settings, ends.target.settings)
    return None


def redo(ends: Endpoints) -> None:
    """Forget the selected cases on the target, so that `run` copies them again."""
    if ends.move_keys:
        raise MigrationError("--redo re-does a case copied under its own keys: not with --as")
    for case_id, name in ends.cases.items():
        logger.info("re-doing case %s: deleting what the target holds of it", name)
        forget_case(ends.target, ends.source_id, case_id)


def run(
    ends: Endpoints, phases: list[Phase], progress: Progress, sizes: Batches | None = None
) -> EventsReport | None:
    _check_idle_queue(ends.source, list(ends.cases))
    check_conflicts(ends)
    if ends.move_keys and ends.keymap is None:
        ends.keymap = keymap_for(ends.source, ends.target, ends.source_id, list(ends.cases))
    report = None
    for phase in phases:
        report = run_phase(ends, phase, progress, sizes or Batches()) or report
    return report


def verify(
    ends: Endpoints,
    login: tuple[str, str] | None = None,
    token: str | None = None,
    phase: Phase | None = None,
) -> VerifyReport:
    """Every check, or those of one phase (its tables; for events, the indexes, evidence
    and saved searches); the login and token checks when asked for."""
    report = VerifyReport()
    table_phases = tuple(p for p in (Phase.CONFIG, Phase.FINDINGS) if phase in (None, p))
    expect = Expect(ends.rename, ends.keymap)
    verify_tables(ends.source, ends.target, ends.cases, report, table_phases, expect)
    if phase in (None, Phase.EVENTS):
        keymap = ends.keymap
        theirs = [keymap.key("cases", c) or 0 for c in ends.cases] if keymap else list(ends.cases)
        target_side = measure_target(ends.target, theirs)
        sides = (
            measure_source(ends.source, list(ends.cases)),
            target_side if keymap is None else source_keyed(target_side, keymap),
        )
        verify_events(ends.source, ends.target, ends.cases, sides, report, keymap)
    if login is not None:
        report.checks.append(check_login(ends.source, ends.target, *login))
    if token is not None:
        report.checks.append(check_token(ends.source, ends.target, token))
    return report
