"""Worker pools are safe to start from an evidence folder, and say why when they cannot start.

- Nothing from the folder `casescope` runs in (or the evidence folder) is ever imported by the
  pool or its workers: evidence is attacker-controlled, and `python -m` used to put the
  working directory first on `sys.path` (a `glob.py` there ran in every worker).
- A pool that dies as it starts is not restarted forever in silence: `ingest` stops after a
  few tries with the pool's own error, and `status` says why no worker runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from casescope.model.enums import FileStatus
from casescope.model.tables import EvidenceFile
from tests.e2e.conftest import Cli

#: Standard modules a pool or worker imports after it started (any one is enough to run code).
PLANTED = (
    "glob",
    "uuid",
    "socket",
    "csv",
    "gzip",
    "zipfile",
    "tempfile",
    "shutil",
    "secrets",
    "fnmatch",
    "hmac",
    "decimal",
    "ipaddress",
    "mimetypes",
    "platform",
    "statistics",
)

#: A planted module records that it ran, then becomes the real module (so the run goes on and
#: shows every process that imported one, instead of crashing at the first).
PROBE = """
import importlib.machinery, importlib.util, os, sys
with open({marker!r}, "a") as out:
    out.write(f"{{__name__}} imported by pid {{os.getpid()}}: {{sys.orig_argv}}\\n")
_here = os.path.dirname(os.path.abspath(__file__))
_path = [p for p in sys.path if os.path.abspath(p or ".") != _here]
_spec = importlib.machinery.PathFinder.find_spec(__name__, _path)
_real = importlib.util.module_from_spec(_spec)
sys.modules[__name__] = _real
_spec.loader.exec_module(_real)
"""


def _casescope() -> str:
    """The console script, as an analyst runs it (not `python -m`, which is the analyst's own
    choice to trust the folder they are in)."""
    script = Path(sys.executable).with_name("casescope")
    assert script.exists(), script
    return str(script)


def _plant(folder: Path, marker: Path) -> None:
    for name in PLANTED:
        (folder / f"{name}.py").write_text(PROBE.format(marker=str(marker)))


@pytest.fixture
def evidence(tmp_path: Path, attack_samples: Path) -> Path:
    folder = tmp_path / "evidence"
    (folder / "host1").mkdir(parents=True)
    samples = sorted(attack_samples.rglob("*.evtx"))[:3]
    for sample in samples:
        shutil.copy(sample, folder / "host1" / sample.name.replace(" ", "_"))
    return folder


def _run(cli: Cli, cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [_casescope(), *args],
        cwd=cwd,
        env={**cli.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _completed(cli: Cli) -> int:
    with cli.db().read() as session:
        where = EvidenceFile.status == FileStatus.COMPLETED, ~EvidenceFile.hidden
        return session.scalar(select(func.count()).where(*where)) or 0


def test_modules_planted_in_the_working_and_evidence_folders_never_run(
    cli: Cli, evidence: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "imported.txt"
    _plant(evidence, marker)
    _plant(evidence / "host1", marker)

    _run(cli, evidence, "ingest", "--case", "planted", ".")  # the pool `ingest` starts
    _run(cli, evidence, "ingest", "--case", "later", "--no-wait", "host1")
    _run(cli, evidence, "worker", "--workers", "2", "--exit-when-idle")  # a pool run by hand

    assert not marker.exists(), marker.read_text()
    assert _completed(cli) == 6  # 3 samples in each case: the planted files were refused


BROKEN_POOL = """
import sys
if "--exit-when-idle" in sys.orig_argv:  # the pool that ingest starts
    sys.stderr.write("the pool cannot start: broken on purpose by the test\\n")
    raise SystemExit(3)
"""


def test_a_pool_that_dies_at_start_stops_ingest_with_its_error(
    cli: Cli, evidence: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BROKEN_POOL)
    broken = {"PYTHONPATH": str(site)}

    proc = subprocess.run(
        [_casescope(), "ingest", "--case", "c", str(evidence)],
        env={**cli.env, **broken},
        capture_output=True,
        text=True,
        timeout=300,  # before the fix: restarted every 5 s, forever
    )

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "the worker pool died 3 times in a row" in proc.stderr
    assert "broken on purpose by the test" in proc.stderr  # the pool's own error
    status = _run(cli, tmp_path, "status")
    assert "no worker runs" in status and "broken on purpose" in status
    # once the cause is gone, a pool takes the waiting files; status no longer warns
    _run(cli, tmp_path, "worker", "--exit-when-idle")
    assert _completed(cli) == 3
    assert "no worker runs" not in _run(cli, tmp_path, "status")
