"""The checks of `verify` beyond counts: events per file, evidence present on the target,
saved searches counting the same, a user's password and an API token working there."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from casescope.migrate.endpoints import Source
from casescope.migrate.events import target_path
from casescope.migrate.keys import KeyMap
from casescope.migrate.phases import Phase
from casescope.migrate.verify import (
    Check,
    Digest,
    FileRow,
    IndexSide,
    VerifyReport,
    case_files,
)
from casescope.model.db import Database
from casescope.model.users import ApiToken, User
from casescope.services.auth import keyed_hash
from casescope.services.tokens import verify_token
from casescope.services.users import authenticate, password_matches

EVENTS = Phase.EVENTS.value


def _total(digests: dict[int, Digest]) -> str:
    return f"{sum(d.count for d in digests.values())} events in {len(digests)} files"


def source_keyed(side: IndexSide, keymap: KeyMap) -> IndexSide:
    """The target's measures under the source's keys (cases, files and saved searches are
    never matched, only moved: `keys`)."""

    def back(table: str, key: int) -> int:
        return key - keymap.offsets.get(table, 0)

    files = {
        back("cases", case): {back("evidence_files", f): d for f, d in digests.items()}
        for case, digests in side.files.items()
    }
    searches = {back("saved_searches", s): n for s, n in side.searches.items()}
    return IndexSide(files, searches)


def _evidence_at(
    row: FileRow, case_id: int, source: Source, target: Database, keymap: KeyMap | None
) -> Path | None:
    home = target.settings.home_dir
    if keymap is None:
        return target_path(row.stored_path, source.home, home)
    return keymap.evidence_path(keymap.key("cases", case_id) or 0, row.sha256, home)


def verify_events(
    source: Source,
    target: Database,
    case_names: dict[int, str],
    sides: tuple[IndexSide, IndexSide],
    report: VerifyReport,
    keymap: KeyMap | None = None,
) -> None:
    mine, theirs = sides
    for case_id, name in case_names.items():
        here, there = mine.files.get(case_id, {}), theirs.files.get(case_id, {})
        report.checks.append(
            Check(EVENTS, "events", name, _total(here), _total(there), here == there)
        )
        for row in case_files(source.engine, case_id):
            what = f"file {row.id} {row.original_path}"
            a, b = here.get(row.id), there.get(row.id)
            if a != b:
                report.checks.append(Check(EVENTS, what, name, str(a), str(b), False))
            stored = _evidence_at(row, case_id, source, target, keymap)
            present = stored is not None and stored.is_file()
            if not present or stored.stat().st_size != row.size_bytes:  # type: ignore[union-attr]
                found = "missing" if not present else "other size"
                report.checks.append(
                    Check(EVENTS, f"evidence {what}", name, "present", found, False)
                )
    for search_id, count in mine.searches.items():
        other = theirs.searches.get(search_id)
        what = f"saved search {search_id}"
        report.checks.append(Check(EVENTS, what, "", str(count), str(other), count == other))


def _hash_of(engine: Engine, username: str) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(select(User.password_hash).where(User.username == username))


def check_login(source: Source, target: Database, username: str, password: str) -> Check:
    """The password matches the user's hash on the source and logs in on the target."""
    stored = _hash_of(source.engine, username)
    here = stored is not None and password_matches(stored, password)
    there = authenticate(target, username, password) is not None
    return Check(
        Phase.CONFIG.value,
        f"login of {username}",
        "",
        "accepted" if here else "refused",
        "accepted" if there else "refused",
        here and there,
    )


def check_token(source: Source, target: Database, token: str) -> Check:
    """The token is one of the source's (when its secret key is known) and the target
    accepts it (which needs the target's CASESCOPE_SECRET_KEY to be the source's)."""
    secret = target.settings.secret_key
    source_secret = source.settings.secret_key or secret
    with source.engine.connect() as connection:
        known = (
            connection.scalar(
                select(ApiToken.id).where(ApiToken.token_hash == keyed_hash(source_secret, token))
            )
            if source_secret
            else None
        )
    there = secret is not None and verify_token(target, secret, token) is not None
    return Check(
        Phase.CONFIG.value,
        "API token",
        "",
        "accepted" if known is not None else "unknown",
        "accepted" if there else "refused (is CASESCOPE_SECRET_KEY the same?)",
        known is not None and there,
    )
