"""Benchmark: `casescope ingest` of the ~11,600-file bulk set, end to end.

The attack samples are copied `--copies` times under distinct names and bytes (42 copies:
~11,600 files, ~436k records); optionally the whole set is first packed into one zip
(`--zip`, to time the archive path). With `--sigma` the rules under that folder are imported
first (default: the full snapshot) and with `--iocs N` N IOCs (a few that hit, the rest
that do not) are added to the case; setup is not timed. The timer is the whole
`casescope ingest` command as the analyst waits for it (intake included: walk, hash, copy,
triage, register), until every event is searchable and every detection recorded.

Prints wall time, files/s, events/s, CPU, peak RSS per process, the detection and IOC-hit
counts, and where the time went (bench/phases.py): the wall-clock milestones (case created,
intake's first and last batch, pool started, its template ready, first and last pipeline
step, each index load, compaction) read from the audit log and the home's log, and the
worker time per pipeline step (summed over files, so it can exceed the wall). With
`--reference-seconds S` (another tool's time on the same files, e.g. Zircolite's) it prints
the ratio S / wall.

Goal on the 2-core machine (issue 27): ≤ 20 s for the whole set, no process above 500 MB.
Usage: .venv/bin/python bench/bulk.py [--copies 42] [--sigma DIR | --no-sigma] [--iocs 100]
       [--reference-seconds S]
Run the full set once; use e.g. `--copies 2` to try changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import DATA, RssSampler, make_bulk_set, run_casescope
from bench.phases import timeline

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import FileStatus
from casescope.model.tables import Detection, EvidenceFile, IocHit

HITTING_IOCS = [
    "rundll32.exe",
    "cmd.exe",
    "powershell.exe",
    "schtasks.exe",
    "whoami.exe",
    "regsvr32.exe",
    "mshta.exe",
    "wmic.exe",
    "net.exe",
    "lsass.exe",
]


def write_iocs(path: Path, count: int) -> Path:
    """`count` IOCs, one a line: the executables above, then indicators that never occur."""
    lines = HITTING_IOCS[:count]
    n = 0
    while len(lines) < count:
        lines.append(f"198.51.100.{n % 250 + 1}" if n % 2 else f"bench-{n}.example.com")
        n += 1
    path.write_text("\n".join(lines) + "\n")
    return path


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return archive


def setup(home: Path, sigma: Path | None, iocs: int, tmp: Path) -> None:
    run_casescope(["case", "create", "bench"], home)
    if sigma is not None:
        wall, _ = run_casescope(["rules", "import", str(sigma)], home)
        print(f"setup: Sigma rules from {sigma} imported in {wall:.1f} s")
    if iocs:
        path = write_iocs(tmp / "iocs.txt", iocs)
        run_casescope(["ioc", "import", "--case", "bench", "--no-wait", str(path)], home)
        print(f"setup: {iocs} IOCs imported")


def results(home: Path) -> tuple[int, int, int, int, int]:
    """(files, failed files, events, detections, IOC hits)."""
    db = Database(Settings(home=home))
    with db.session() as session:
        files, events = session.execute(
            select(func.count(), func.coalesce(func.sum(EvidenceFile.event_count), 0))
        ).one()
        failed = session.scalar(
            select(func.count()).where(EvidenceFile.status == FileStatus.FAILED)
        )
        detections = session.scalar(select(func.count()).select_from(Detection))
        hits = session.scalar(select(func.count()).select_from(IocHit))
    db.dispose()
    return files, failed or 0, events, detections or 0, hits or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=42, help="copies of the attack samples")
    parser.add_argument("--sigma", type=Path, default=DATA / "sigma", help="rules to import")
    parser.add_argument("--no-sigma", action="store_true", help="no Sigma rules")
    parser.add_argument("--iocs", type=int, default=100, help="IOCs in the case (0: none)")
    parser.add_argument("--zip", action="store_true", help="ingest the set as one zip")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--reference-seconds", type=float, default=None, help="a peer's time on the same files"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cs-bulk-") as tmp_name:
        tmp = Path(tmp_name)
        evidence = tmp / "bulk"
        make_bulk_set(evidence, args.copies)
        if args.zip:
            evidence = zip_folder(evidence, tmp / "bulk.zip")
        home = tmp / "home"
        setup(home, None if args.no_sigma else args.sigma, args.iocs, tmp)
        env = {"CASESCOPE_WORKERS": str(args.workers)} if args.workers else {}
        started = datetime.now(UTC)
        wall, sampler = run_casescope(["ingest", "--case", "bench", str(evidence)], home, **env)
        files, failed, events, detections, hits = results(home)
        report(args, wall, sampler, (files, failed, events, detections, hits))
        timeline(home, started, wall)


def report(
    args: argparse.Namespace, wall: float, sampler: RssSampler, counts: tuple[int, ...]
) -> None:
    files, failed, events, detections, hits = counts
    print(f"\n== bulk set: {args.copies} copies{' (one zip)' if args.zip else ''}")
    print(f"{files:,} files ({failed:,} failed), {events:,} events")
    print(
        f"wall {wall:.2f} s | {files / wall:,.0f} files/s | {events / wall:,.0f} events/s "
        f"| goal: ≤ 20 s for 42 copies"
    )
    if args.reference_seconds:
        print(
            f"reference {args.reference_seconds:.1f} s / casescope {wall:.2f} s = "
            f"{args.reference_seconds / wall:.1f}x"
        )
    cpu = sampler.cpu_seconds
    print(
        f"CPU (user+sys, all casescope processes) {cpu:.1f} s | {1000 * cpu / max(files, 1):.1f} "
        f"ms/file | {1000 * cpu / max(events / 1000, 1):.0f} ms per 1k events"
    )
    print(f"detections {detections:,} | IOC hits {hits:,}")
    print(sampler.report())
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
