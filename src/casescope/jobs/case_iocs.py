"""A case's IOCs as the workers hunt them: the enabled set, its ids, and the key of its
compiled matcher. Services read them here too (adding IOCs hunts the new ones at once)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from casescope.hunt.ioc import Ioc, IocType
from casescope.model.tables import Ioc as IocRow


def enabled_iocs(session: Session, case_id: int) -> list[Ioc]:
    """The case's enabled IOCs as the hunt engine's `Ioc` (with ids), in id order."""
    rows = session.execute(
        select(IocRow.id, IocRow.type, IocRow.original, IocRow.value, IocRow.note)
        .where(IocRow.case_id == case_id, IocRow.enabled.is_(True))
        .order_by(IocRow.id)
    )
    return [
        Ioc(IocType(kind), original, value, note or None, ioc_id)
        for ioc_id, kind, original, value, note in rows
    ]


def enabled_ioc_ids(session: Session, case_id: int) -> set[int]:
    """Ids of the case's enabled IOCs (what a worker may write hits for)."""
    query = select(IocRow.id).where(IocRow.case_id == case_id, IocRow.enabled.is_(True))
    return set(session.scalars(query))


def ioc_set_hash(iocs: Iterable[Ioc]) -> str:
    """A short hash of an IOC set (ids, types, values): the key of a compiled matcher."""
    digest = hashlib.sha256()
    for ioc in sorted(iocs, key=lambda i: i.id or 0):
        digest.update(f"{ioc.id}\0{ioc.type.value}\0{ioc.normalised}\n".encode())
    return digest.hexdigest()[:32]
