"""IOC type options (`--type`, `--ioc-type`), shared by `ioc`, `hits` and `search`: apart from
cli/iocs.py so that `search` does not import the IOC commands and their services."""

from __future__ import annotations

import typer

from casescope.hunt.ioc import IocError, IocType, coerce_type


def checked_type(name: str | None) -> IocType | str | None:
    """Check a --type early (aliases allowed; `hash` is kept for the length to decide)."""
    if name is None:
        return None
    try:
        resolved = coerce_type(name)
    except IocError as exc:
        raise typer.BadParameter(str(exc)) from None
    return resolved if resolved is not None else name


def filter_type(name: str | None) -> IocType | None:
    """A --type filter: one exact type (aliases allowed, but not `hash`)."""
    kind = checked_type(name)
    if kind is not None and not isinstance(kind, IocType):
        raise typer.BadParameter("filter on md5, sha1 or sha256, not hash")
    return kind
