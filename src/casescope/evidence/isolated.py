"""Intake in a child process, for `casescope serve`: evidence never runs in the index owner.

Uploads and server-side imports are archives and folders that anyone with write access to a
case hands to the server. Taking them in (`intake.ingest_paths`: walking, hashing, zip
members, registering) happens in a child process: `python -I -m casescope.evidence.isolated`
(isolated mode: no user-controlled path on `sys.path`), run in the home folder, its address
space bounded by CASESCOPE_INTAKE_MEMORY_MB over what it needs at start. A hostile archive
can exhaust that child, never the server that holds the index and every user's session.

The parent sends the request as JSON on stdin; the child writes the intake report as JSON on
stdout, or an error, and its log lines (warnings) on stderr, which the parent logs.
`casescope ingest` takes evidence in before it opens the index, and keeps it in-process.
"""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from casescope.config import Settings
from casescope.errors import CasescopeError, EvidenceError
from casescope.evidence.intake import IntakeReport, ingest_paths
from casescope.model.db import Database
from casescope.model.tables import Case

logger = logging.getLogger(__name__)

MODULE = "casescope.evidence.isolated"
#: Exit status of a child that wrote its error as JSON (anything else is a crash).
EXIT_REFUSED = 2
_STDERR_SHOWN = 500


def ingest_isolated(
    settings: Settings, case_id: int, paths: Sequence[Path], operation_id: int | None = None
) -> IntakeReport:
    """`ingest_paths` for `case_id` in a child process (see the module doc); its report.
    Raises EvidenceError with the child's reason when it stops without one (files registered
    before that stay registered and queued)."""
    request = {
        "settings": settings.model_dump(mode="json"),
        "case_id": case_id,
        "paths": [str(path) for path in paths],
        "operation_id": operation_id,
    }
    proc = subprocess.run(
        [sys.executable, "-P", "-m", MODULE],  # nothing from the working directory
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=settings.home_dir,
        check=False,
    )
    for line in proc.stderr.splitlines():
        logger.warning("intake process: %s", line)
    answer = _answer(proc.stdout)
    if proc.returncode == 0 and "report" in answer:
        return _report(answer["report"])
    reason = answer.get("error") or _crash(proc)
    raise EvidenceError(f"evidence intake stopped: {reason}")


def _answer(stdout: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _crash(proc: subprocess.CompletedProcess[str]) -> str:
    last = proc.stderr.strip().splitlines()[-1:] or ["no message"]
    if proc.returncode < 0:
        return f"the intake process was killed by signal {-proc.returncode} ({last[0]})"
    return f"the intake process failed with status {proc.returncode} ({last[0][:_STDERR_SHOWN]})"


def _report(data: dict[str, Any]) -> IntakeReport:
    return IntakeReport(
        queued=[int(i) for i in data["queued"]],
        duplicates=[(str(p), int(i)) for p, i in data["duplicates"]],
        empty=[int(i) for i in data["empty"]],
        rejected=[(str(p), str(r)) for p, r in data["rejected"]],
        operation_id=data["operation_id"],
    )


def _bound_memory(settings: Settings) -> None:
    """Let this process allocate CASESCOPE_INTAKE_MEMORY_MB more than it holds now (its
    interpreter and libraries): past it, an allocation fails with MemoryError."""
    limit = psutil.Process().memory_info().vms + settings.intake_memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _take_in(request: dict[str, Any]) -> IntakeReport:
    settings = Settings(**request["settings"])
    _bound_memory(settings)
    db = Database(settings, run_migrations=False)
    try:
        with db.read() as session:
            case = session.get(Case, int(request["case_id"]))
        if case is None:
            raise EvidenceError(f"no case {request['case_id']}")
        paths = [Path(p) for p in request["paths"]]
        return ingest_paths(db, settings, case, paths, operation_id=request["operation_id"])
    finally:
        db.dispose()


def main() -> int:
    """The child: a request on stdin, the report (or the reason there is none) on stdout."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        report = _take_in(json.loads(sys.stdin.read()))
    except CasescopeError as exc:
        print(json.dumps({"error": str(exc)}))  # noqa: T201 - the answer to the parent
        return EXIT_REFUSED
    except MemoryError:
        reason = "the evidence needed more memory than CASESCOPE_INTAKE_MEMORY_MB allows"
        print(json.dumps({"error": reason}))  # noqa: T201 - the answer to the parent
        return EXIT_REFUSED
    print(json.dumps({"report": asdict(report)}))  # noqa: T201 - the answer to the parent
    return 0


if __name__ == "__main__":
    sys.exit(main())
