"""Audit actions are one enum with one naming scheme (`noun.verb`): no module writes an action
as a string of its own, and the names users type (old ones included) are read at the edge."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from casescope.errors import CasescopeError
from casescope.model.enums import (
    LEGACY_AUDIT_ACTIONS,
    AuditAction,
    AuditKind,
    FileStatus,
    Operation,
)
from casescope.model.users import EventMark
from tests.conftest import REPO_ROOT

SOURCE = REPO_ROOT / "src" / "casescope"
#: Where action names may be written as text: the enum itself, and migrations (frozen names).
ALLOWED = {SOURCE / "model" / "enums.py"}
NOUNS = {action.value.partition(".")[0] for action in AuditAction}


def _modules() -> list[Path]:
    return [
        path
        for path in sorted(SOURCE.rglob("*.py"))
        if path not in ALLOWED and "migrations" not in path.parts
    ]


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _action_text(node: ast.AST) -> bool:
    """A literal action name (`"case.create"`), or an f-string that builds one (`f"rules.{x}"`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value in set(AuditAction) | set(LEGACY_AUDIT_ACTIONS) and "." in node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value.partition(".")[0] in NOUNS and "." in head.value
    return False


def _writes_audit_rows(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        isinstance(n, ast.Call) and ast.unparse(n.func) == "AuditRecord" for n in ast.walk(func)
    )


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path.name
    found = []
    for node in ast.walk(tree):
        where = f"{shown}:{getattr(node, 'lineno', 0)}"
        # argparse's `add_argument(action="store_true")` names an argparse action
        if isinstance(node, ast.Call) and not ast.unparse(node.func).endswith(".add_argument"):
            found += [
                f"{where} action=<text>"
                for k in node.keywords
                if k.arg == "action" and _is_text(k.value)
            ]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _writes_audit_rows(node):
            for arg in node.args.args:
                if arg.arg == "action" and "AuditAction" not in ast.unparse(arg.annotation or ""):
                    found.append(f"{where} {node.name}(action) is not an AuditAction")
        if _action_text(node):
            found.append(f"{where} action name as text: {ast.unparse(node)}")
    return found


def test_every_audit_action_written_is_an_audit_action() -> None:
    """An AST scan of src/casescope: no `action=` keyword with a string or f-string, every
    audit helper's `action` parameter is an `AuditAction`, and no action name is spelled
    as text (an f-string like `f"event.{kind}"` included) outside the enum."""
    problems = [problem for path in _modules() for problem in _problems(path)]
    assert not problems, "\n".join(problems)


def test_the_scan_sees_what_it_forbids(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def _audit(session, action: str):\n"
        "    session.add(AuditRecord(action=action))\n"
        "AuditRecord(action='intake_refused')\n"
        "_audit(s, 'case.create')\n"
        "audit(state, p, f'event.{kind.value}')\n"
    )
    problems = _problems(bad)
    assert len(problems) == 4, problems
    good = tmp_path / "good.py"
    good.write_text(
        "def _audit(session, action: AuditAction):\n"
        "    session.add(AuditRecord(action=action))\n"
        "_audit(s, AuditAction.CASE_CREATE)\n"
        "audit(state, p, kind.audit_action(True), f'{file_id}:{seq}')\n"
    )
    assert _problems(good) == []


def test_one_naming_scheme() -> None:
    assert all(re.fullmatch(r"[a-z]+\.[a-z_]+", action.value) for action in AuditAction)
    assert all(len(action.value) <= 50 for action in AuditAction)  # the column's length


def test_pipeline_steps_are_told_apart_from_actions() -> None:
    steps = {action for action in AuditAction if action.is_pipeline_step}
    assert steps == {AuditAction.step(s) for s in FileStatus if s in _STEP_STATUSES}
    assert all(action.value.startswith("step.") for action in steps)
    assert AuditAction.POOL_FAILED.kind is AuditKind.SYSTEM
    assert AuditAction.INTAKE_REFUSED.kind is AuditKind.SYSTEM
    assert AuditAction.CASE_CREATE.kind is AuditKind.ACTION
    assert AuditAction.EVENT_EXPORT.kind is AuditKind.ACTION


_STEP_STATUSES = {FileStatus.ESTIMATING, FileStatus.INDEXING, FileStatus.SIGMA, FileStatus.IOC}


def test_every_operation_and_mark_has_its_action() -> None:
    assert {AuditAction.queued(op) for op in Operation} == {
        a for a in AuditAction if a.value.startswith("queue.")
    }
    marks = {mark.audit_action(on) for mark in EventMark for on in (True, False)}
    assert marks == {a for a in AuditAction if a.value.startswith("event.")} - {
        AuditAction.EVENT_EXPORT
    }


@pytest.mark.parametrize(
    ("typed", "action"),
    [
        ("intake.refused", AuditAction.INTAKE_REFUSED),
        (" Step.Indexing ", AuditAction.STEP_INDEXING),
        ("intake_refused", AuditAction.INTAKE_REFUSED),  # the names of before 0020
        ("indexing", AuditAction.STEP_INDEXING),
        ("export", AuditAction.EVENT_EXPORT),
        ("intake", AuditAction.INTAKE_REGISTERED),
    ],
)
def test_parse_takes_names_and_old_names(typed: str, action: AuditAction) -> None:
    assert AuditAction.parse(typed) is action


def test_an_unknown_action_lists_the_choices() -> None:
    with pytest.raises(CasescopeError) as raised:
        AuditAction.parse("case.explode")
    message = str(raised.value)
    assert "'case.explode'" in message and "intake.refused" in message
    assert all(action.value in message for action in AuditAction)


def test_the_web_page_documents_every_action_and_its_kind() -> None:
    text = (REPO_ROOT / "docs" / "web.md").read_text()
    section = text.split("- **Audit actions**", 1)[1].split("\n### ", 1)[0]
    missing = [action.value for action in AuditAction if f"`{action.value}`" not in section]
    assert not missing, f"audit actions missing from docs/web.md: {missing}"
    for kind in AuditKind:
        actions = [a for a in AuditAction if a.kind is kind]
        listed = section.split(f"*{kind.value}*", 1)[1].split("\n  - ", 1)[0]
        assert all(f"`{a.value}`" in listed for a in actions), kind
    assert all(f"`{old}`" in section for old in LEGACY_AUDIT_ACTIONS)
