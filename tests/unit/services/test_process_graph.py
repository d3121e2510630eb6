"""Process tree reconstruction over event records: GUIDs, pid reuse, missing parents, loops."""

from __future__ import annotations

from datetime import datetime, timedelta

from casescope.services.process_graph import (
    ProcessEnd,
    ProcessPool,
    ProcessRecord,
    ProcessTree,
    Source,
    TreeLimits,
    TreeNode,
    build_tree,
    norm_guid,
    parse_pid,
)
from casescope.services.process_records import actor_record, creation_record, records_from_rows

T0 = datetime(2024, 3, 1, 10, 0, 0)
PC = "PC01"
_seq = iter(range(1_000_000))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sysmon(guid: str, parent: str, t: float, image: str = "", **kw: object) -> ProcessRecord:
    return ProcessRecord(
        (1, next(_seq)), at(t), kw.pop("computer", PC), Source.SYSMON,  # type: ignore[arg-type]
        pid=kw.pop("pid", None), guid=guid, parent_guid=parent,  # type: ignore[arg-type]
        image=image or f"C:\\{guid}.exe", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def security(pid: int, parent: int, t: float, image: str = "", **kw: object) -> ProcessRecord:
    return ProcessRecord(
        (2, next(_seq)), at(t), PC, Source.SECURITY, pid=pid, parent_pid=parent,
        image=image or f"C:\\p{pid}.exe", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def pool_of(*records: ProcessRecord, ends: tuple[ProcessEnd, ...] = ()) -> ProcessPool:
    pool = ProcessPool()
    pool.add(records, ends)
    return pool


def images(node: TreeNode) -> list[str]:
    return [c.process.image for c in node.children]


def lineage(tree: ProcessTree) -> list[str]:
    """Images from the root down to the focus."""
    out, node = [], tree.root
    while True:
        out.append(node.process.image)
        if node is tree.focus:
            return out
        node = next(c for c in node.children if c.focus or c.children or c is tree.focus)


def test_sysmon_lineage_and_descendants_by_guid() -> None:
    root = sysmon("A", "", 0, "explorer.exe")
    cmd = sysmon("B", "A", 10, "cmd.exe")
    ps = sysmon("C", "B", 20, "powershell.exe")
    who = sysmon("D", "C", 30, "whoami.exe")
    net = sysmon("E", "C", 31, "net.exe")
    tree = build_tree(pool_of(root, cmd, ps, who, net), ps, TreeLimits())
    assert lineage(tree) == ["explorer.exe", "cmd.exe", "powershell.exe"]
    assert tree.focus.focus and images(tree.focus) == ["whoami.exe", "net.exe"]
    assert tree.nodes == 5 and not tree.cycle and not tree.ancestors_cut


def test_pid_reuse_gives_each_child_the_instance_alive_when_it_started() -> None:
    first = security(0x10, 4, 0, "first.exe")
    second = security(0x10, 4, 100, "second.exe")
    early = security(0x20, 0x10, 10, "early.exe")
    orphan = security(0x30, 0x10, 60, "orphan.exe", parent_image="C:\\gone.exe")
    late = security(0x40, 0x10, 200, "late.exe")
    ends = (ProcessEnd(at(50), PC, pid=0x10),)  # the first instance exited at 50 s
    pool = pool_of(first, second, early, orphan, late, ends=ends)
    assert pool.parent_of(early) == first
    assert pool.parent_of(orphan) is None  # first had exited, second not yet started
    assert pool.parent_of(late) == second
    assert [c.image for c in pool.children_of(first)] == ["early.exe"]
    assert pool.end_of(first) == at(50) and pool.end_of(second) is None
    assert pool.until(first) == at(50)
    tree = build_tree(pool, orphan, TreeLimits())
    assert tree.root.inferred and tree.root.process.image == "C:\\gone.exe"


def test_a_newer_instance_replaces_an_older_one_without_an_exit() -> None:
    old = security(0x10, 4, 0, "old.exe")
    new = security(0x10, 4, 100, "new.exe")
    a = security(0x20, 0x10, 50, "a.exe")
    b = security(0x30, 0x10, 150, "b.exe")
    pool = pool_of(old, new, a, b)
    assert pool.parent_of(a) == old and pool.parent_of(b) == new
    assert pool.until(old) == at(100)


def test_copies_of_one_guid_are_told_apart_by_time() -> None:
    first, second = sysmon("P", "", 0, "p1"), sysmon("P", "", 3600, "p2")
    kid1, kid2 = sysmon("K1", "P", 10, "k1"), sysmon("K2", "P", 3610, "k2")
    pool = pool_of(first, second, kid1, kid2)
    assert pool.parent_of(kid1) == first and pool.parent_of(kid2) == second


def test_missing_parent_is_inferred_from_what_the_child_says() -> None:
    child = sysmon(
        "C", "GONE", 5, "powershell.exe", pid=7, parent_pid=6,
        parent_image="C:\\Windows\\System32\\cmd.exe", parent_command_line="cmd /c x",
    )  # fmt: skip
    tree = build_tree(pool_of(child), child, TreeLimits())
    parent = tree.root
    assert parent.inferred and parent.process.image == "C:\\Windows\\System32\\cmd.exe"
    assert parent.process.command_line == "cmd /c x" and parent.process.guid == "GONE"
    assert parent.children == [tree.focus]


def test_a_parent_that_needs_no_inference_has_none() -> None:
    lone = sysmon("L", "", 0, "lone.exe")
    tree = build_tree(pool_of(lone), lone, TreeLimits())
    assert tree.root is tree.focus and tree.nodes == 1


def test_loops_in_bad_data_end() -> None:
    a = sysmon("A", "B", 0, "a.exe")
    b = sysmon("B", "A", 0, "b.exe")  # each names the other as its parent, at the same time
    tree = build_tree(pool_of(a, b), a, TreeLimits())
    assert tree.cycle
    assert tree.nodes == 2
    selfish = sysmon("S", "S", 0, "self.exe")  # its own parent
    pool = pool_of(selfish)
    assert pool.parent_of(selfish) is None and pool.children_of(selfish) == []
    pids = [security(5, 6, 0, "five"), security(6, 5, 0, "six")]
    tree = build_tree(pool_of(*pids), pids[0], TreeLimits())
    assert tree.cycle and tree.nodes == 2


def test_a_pid_of_another_guid_is_not_the_parent() -> None:
    other = sysmon("OTHER", "", 0, "other.exe", pid=100)
    child = sysmon("C", "REAL", 10, "child.exe", pid=101, parent_pid=100)
    assert pool_of(other, child).parent_of(child) is None


def test_sysmon_and_4688_of_one_process_are_one_node() -> None:
    ps = sysmon("PS", "", 0, "powershell.exe", pid=0x1A4)
    twin = security(0x1A4, 4, 0.5, "powershell.exe")
    kid = security(0x1B0, 0x1A4, 10, "whoami.exe")  # logged by 4688 only
    pool = pool_of(ps, twin, kid)
    assert twin.ref is not None and pool.resolve(twin.ref) == ps
    assert pool.parent_of(kid) == ps
    assert len(pool) == 2


def test_other_computers_do_not_link() -> None:
    parent = sysmon("P", "", 0, computer="PC02")
    child = sysmon("C", "P", 10)
    assert pool_of(parent, child).parent_of(child) is None


def test_ten_thousand_children_are_counted_not_shown() -> None:
    parent = sysmon("P", "", 0, "services.exe")
    kids = [sysmon(f"K{n}", "P", 1 + n / 1000) for n in range(10_000)]
    tree = build_tree(pool_of(parent, *kids), parent, TreeLimits(nodes=300))
    assert len(tree.focus.children) == 299 and tree.focus.more_children == 9_701
    assert tree.nodes == 300
    assert tree.focus.children[0].process.guid == "K0"  # first started, first shown


def test_depth_and_ancestor_limits() -> None:
    chain = [sysmon("G0", "", 0)]
    for n in range(1, 60):
        chain.append(sysmon(f"G{n}", f"G{n - 1}", n))
    pool = pool_of(*chain)
    tree = build_tree(pool, chain[50], TreeLimits(ancestors=10, depth=3))
    assert tree.ancestors_cut and tree.root.process.guid == "G40"
    node = tree.focus
    for _ in range(3):
        (node,) = node.children
    assert node.process.guid == "G53" and node.more_children == 1 and not node.children


def test_an_exited_parent_does_not_adopt_later_children_by_guid() -> None:
    parent = sysmon("P", "", 0)
    child = sysmon("C", "P", 100)
    pool = pool_of(parent, child, ends=(ProcessEnd(at(50), PC, guid="P"),))
    assert pool.parent_of(child) is None


def test_records_from_event_rows() -> None:
    base = {"ts": "2024-03-01 10:00:00.000000", "file_id": 3, "computer": PC}
    rows = [
        {**base, "seq": 1, "event_id": 1, "channel": "Microsoft-Windows-Sysmon/Operational",
         "fields": {"ProcessGuid": "{365abb72-ac28-5cb8-0000-0010f3f70700}", "ProcessId": "420",
                    "ParentProcessGuid": "365ABB72-AC01-5CB8-0000-0010BB7E0700",
                    "ParentProcessId": "1", "Image": "C:\\ps.exe"}},
        {**base, "seq": 2, "event_id": 4688, "channel": "Security",
         "fields": {"NewProcessId": "0x1a4", "ProcessId": "0x4", "NewProcessName": "C:\\x.exe",
                    "SubjectUserName": "bob", "SubjectDomainName": "CORP",
                    "TargetUserName": "-"}},
        {**base, "seq": 3, "event_id": 4689, "channel": "Security",
         "fields": {"ProcessId": "0x1a4"}},
        {**base, "seq": 4, "event_id": 4624, "channel": "Security", "fields": {}},
    ]  # fmt: skip
    starts, ends = records_from_rows(rows)
    assert [s.ref for s in starts] == [(3, 1), (3, 2)]
    assert starts[0].guid == "365ABB72-AC28-5CB8-0000-0010F3F70700" and starts[0].pid == 420
    assert starts[1].pid == 0x1A4 and starts[1].parent_pid == 4 and starts[1].user == "CORP\\bob"
    assert ends == [ProcessEnd(datetime(2024, 3, 1, 10), PC, pid=0x1A4)]
    assert creation_record(rows[3]) is None
    assert actor_record(rows[3]) is None  # a 4624 without ProcessName names no process
    access = {**base, "seq": 5, "event_id": 10, "channel": "Microsoft-Windows-Sysmon/Operational",
              "fields": {"SourceProcessGUID": "365ABB72-A1E3-5C8E-0000-0010CEF72200",
                         "SourceProcessId": "3588", "SourceImage": "C:\\mimikatz.exe"}}  # fmt: skip
    actor = actor_record(access)
    assert actor is not None and actor.pid == 3588 and actor.image == "C:\\mimikatz.exe"


def test_ids_and_guids_normalise() -> None:
    assert parse_pid("0x1A4") == 420 and parse_pid("420") == 420
    assert parse_pid("0") is None and parse_pid("-") is None and parse_pid(None) is None
    assert norm_guid("{abc-def}") == "ABC-DEF"
    assert norm_guid("00000000-0000-0000-0000-000000000000") == ""
