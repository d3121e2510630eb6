"""The System page: the index, the queue as a table of job states, the workers (or that
none runs), memory and disk. Admins see every worker; others their cases' files only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from casescope.model.enums import JobState
from casescope.model.users import Role
from casescope.units import human_size
from casescope.web.api.system import system_view
from casescope.web.pages import render
from casescope.web.security import Caller, State
from casescope.web.timefmt import when

router = APIRouter(include_in_schema=False)


def _overview(report: dict) -> list[tuple[str, str]]:
    return [
        ("events indexed", f"{report['events_indexed']:,}"),
        ("memory used", f"{report['memory_used_mb']:,.0f} MB of {report['memory_limit_mb']:,} MB"),
        (
            "disk free",
            f"{human_size(report['disk_free_bytes'])} of {human_size(report['disk_total_bytes'])}",
        ),
        ("home disk use", human_size(report["home_used_bytes"])),
    ]


def _queue(report: dict) -> list[tuple[str, int]]:
    """Every job state in the pipeline's order, 0 when none (a table, not a dict)."""
    counts = report["queue"]
    return [(state.value, int(counts.get(state.value, 0))) for state in JobState]


def _warnings(report: dict, zone: str) -> list[str]:
    warnings = []
    if report["memory_warning"]:
        warnings.append("memory use is above 80% of the configured limit")
    if report["pool_failure"]:
        failure = report["pool_failure"]
        warnings.append(f"no worker runs: at {when(failure['at'], zone)} {failure['detail']}")
    return warnings


@router.get("/system")
async def system_page(request: Request, state: State, principal: Caller) -> HTMLResponse:
    report = await system_view(request, state, principal)
    admin = principal.role is Role.ADMIN
    return render(
        request,
        "system.html",
        principal,
        admin=admin,
        overview=_overview(report),
        queue=_queue(report),
        workers=report["workers"],
        hosts=report.get("hosts") or [],
        warnings=_warnings(report, principal.user.timezone),
        age=report["age_seconds"],
    )
