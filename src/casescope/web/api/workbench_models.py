"""Response models of the event workbench API (event findings, context, neighbours, process
trees and activity, logon sessions), and their construction from the services' objects.

Times are the index's UTC text (`2024-03-01 10:00:00.123456`), as the search API returns them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from casescope.services.event_detail import Badge, IocMatch, RuleHit
from casescope.services.logon_sessions import WELL_KNOWN, LogonSession
from casescope.services.process_graph import ProcessRecord, ProcessTree, TreeNode
from casescope.store.summary import summarise

EventKey = tuple[int, int]


def time_text(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if moment else None


class EventRef(BaseModel):
    """An event of the case: its file and position (`GET /events/{file_id}/{seq}`)."""

    file_id: int
    seq: int


def ref_of(key: EventKey | None) -> EventRef | None:
    return EventRef(file_id=key[0], seq=key[1]) if key else None


class EventRow(BaseModel):
    """An event as lists show it: its columns, fields, one-line summary and detections."""

    ts: str
    file_id: int
    seq: int
    event_id: int | None = None
    channel: str = ""
    provider: str = ""
    computer: str = ""
    record_id: int | None = None
    level: int | None = None
    user_name: str = ""
    user_sid: str = ""
    fields: dict[str, str] = Field(default_factory=dict)
    summary: str = Field("", description="The fields that matter for this kind of event.")
    detections: int = Field(0, description="Rules that matched it.")
    detection_level: str = Field("", description="The highest level among them.")


def event_row(row: dict[str, Any], badges: dict[EventKey, Badge]) -> EventRow:
    fields = row.get("fields") or {}
    badge = badges.get((int(row["file_id"]), int(row["seq"])))
    return EventRow(
        **{k: row[k] for k in EventRow.model_fields if k in row and row[k] is not None},
        summary=summarise(
            row.get("channel", ""), row.get("provider", ""), row.get("event_id"), fields
        ),
        detections=badge.count if badge else 0,
        detection_level=badge.level if badge else "",
    )


class EventPage(BaseModel):
    """A keyset page of events: pass `next_cursor` back as `cursor` for the next one."""

    total: int = Field(description="Matches, exact when `total_exact`, else a lower bound.")
    total_exact: bool
    rows: list[EventRow]
    next_cursor: str | None = None


class RuleHitOut(BaseModel):
    rule_uid: str
    title: str
    level: str
    status: str
    tactics: list[str]
    techniques: list[str] = Field(description="ATT&CK technique ids, e.g. T1003.001.")
    groups_software: list[str]
    description: str
    detection: str = Field(description="The rule's `detection:` (or `correlation:`) block.")


def rule_out(hit: RuleHit) -> RuleHitOut:
    return RuleHitOut(
        rule_uid=hit.rule_uid,
        title=hit.title,
        level=hit.level,
        status=hit.status,
        tactics=[tactic.short for tactic in hit.attack.tactics],
        techniques=list(hit.attack.techniques),
        groups_software=list(hit.attack.others),
        description=hit.description,
        detection=hit.logic,
    )


class IocHitOut(BaseModel):
    ioc_id: int
    type: str
    value: str
    field: str = Field(description="The event field (or column) the IOC was found in.")
    excerpt: str


def ioc_out(hit: IocMatch) -> IocHitOut:
    return IocHitOut(**hit.__dict__)


class FindingsOut(BaseModel):
    """Why an event matters: the rules that matched it and the IOCs that hit it."""

    rules: list[RuleHitOut]
    ioc_hits: list[IocHitOut]


class ContextOut(BaseModel):
    """Events on the event's computer within ± `minutes`, in time order."""

    event: EventRef
    minutes: int
    total: int
    total_exact: bool
    rows: list[EventRow]
    earlier: str | None = Field(None, description="Cursor (`before`) of the page before.")
    later: str | None = Field(None, description="Cursor (`after`) of the page after.")


class NeighboursOut(BaseModel):
    """The events before and after this one in a search (its parameters, sort, order)."""

    previous: EventRef | None
    next: EventRef | None


class ProcessOut(BaseModel):
    """One process: from its creation event, or (`inferred`) from what another event says."""

    node_id: str
    event: EventRef | None = Field(description="Its creation event (Sysmon 1 / 4688).")
    inferred: bool
    source: str
    computer: str
    pid: int | None
    guid: str
    image: str
    command_line: str
    user: str
    logon_id: str
    started: str | None
    ended: str | None = None
    detections: int = 0
    detection_level: str = ""


class ProcessNodeOut(ProcessOut):
    focus: bool = False
    more_children: int = Field(0, description="Children known but not shown (limits).")
    children: list[ProcessNodeOut] = Field(default_factory=list)


def process_out(record: ProcessRecord, badges: dict[EventKey, Badge]) -> dict[str, Any]:
    badge = badges.get(record.ref) if record.ref else None
    return {
        "node_id": record.node_id,
        "event": ref_of(record.ref),
        "inferred": record.ref is None,
        "source": record.source.value,
        "computer": record.computer,
        "pid": record.pid,
        "guid": record.guid,
        "image": record.image,
        "command_line": record.command_line,
        "user": record.user,
        "logon_id": record.logon_id,
        "started": time_text(record.ts),
        "detections": badge.count if badge else 0,
        "detection_level": badge.level if badge else "",
    }


def node_out(node: TreeNode, badges: dict[EventKey, Badge]) -> ProcessNodeOut:
    return ProcessNodeOut(
        **process_out(node.process, badges),
        ended=time_text(node.ended),
        focus=node.focus,
        more_children=node.more_children,
        children=[node_out(c, badges) for c in node.children],
    )


def tree_refs(node: TreeNode) -> list[EventKey]:
    refs = [node.process.ref] if node.process.ref else []
    for child in node.children:
        refs.extend(tree_refs(child))
    return refs


class ProcessTreeOut(BaseModel):
    """Ancestors (one line from the root) and descendants of the focus process."""

    root: ProcessNodeOut
    focus_id: str
    nodes: int
    ancestors_cut: bool = Field(
        description="More ancestors than `ancestors`: the root is not the topmost."
    )
    cycle: bool = Field(description="Bad data named a process its own ancestor; the loop was cut.")
    ancestors: int
    depth: int
    max_nodes: int


def tree_out(tree: ProcessTree, badges: dict[EventKey, Badge], limits: Any) -> ProcessTreeOut:
    return ProcessTreeOut(
        root=node_out(tree.root, badges),
        focus_id=tree.focus.process.node_id,
        nodes=tree.nodes,
        ancestors_cut=tree.ancestors_cut,
        cycle=tree.cycle,
        ancestors=limits.ancestors,
        depth=limits.depth,
        max_nodes=limits.nodes,
    )


class ProcessActivityOut(EventPage):
    """What the process did in its lifetime: events with its ProcessGuid (Sysmon) or its
    ProcessId (Security), from `since` to `until` (None: open)."""

    process: ProcessOut
    since: str | None
    until: str | None


class LogonSessionOut(EventPage):
    """A logon session on a computer and, paged, every event in it."""

    computer: str
    logon_id: str
    well_known: str = Field(description="SYSTEM, NETWORK SERVICE, LOCAL SERVICE, or empty.")
    start: str | None
    end: str | None
    user: str
    logon_type: str
    ip_address: str
    ip_port: str
    workstation: str
    logon_process: str
    auth_package: str
    elevated: bool = Field(description="A 4672 (special privileges) came with the logon.")
    logon_event: EventRef | None
    logoff_event: EventRef | None


def session_fields(session: LogonSession) -> dict[str, Any]:
    def ref(row: dict[str, Any] | None) -> EventRef | None:
        return EventRef(file_id=int(row["file_id"]), seq=int(row["seq"])) if row else None

    return {
        "computer": session.computer,
        "logon_id": session.logon_id,
        "well_known": WELL_KNOWN.get(session.logon_id, ""),
        "start": time_text(session.start),
        "end": time_text(session.end),
        "user": session.user,
        "logon_type": session.logon_type,
        "ip_address": session.field("IpAddress"),
        "ip_port": session.field("IpPort"),
        "workstation": session.field("WorkstationName"),
        "logon_process": session.field("LogonProcessName"),
        "auth_package": session.field("AuthenticationPackageName"),
        "elevated": session.elevated,
        "logon_event": ref(session.logon),
        "logoff_event": ref(session.logoff),
    }
