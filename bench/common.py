"""Helpers shared by the benchmark scripts: sample data, a fresh home, RSS sampling."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from casescope.parse.evtx_layout import (
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    chunk_fill,
    chunk_is_intact,
    chunk_record_range,
    file_header,
)

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CASESCOPE_DATA", REPO.parent / "shared" / "data"))
ATTACK_SAMPLES = DATA / "evtx" / "attack-samples"
EVTX_HEADER_PADDING = range(128, 4096)  # unused bytes of the EVTX file header (not checksummed)
#: Chunks of a real, large log are full; most samples' are not (357 intact chunks with 23
#: records in 24 KB on average; the 87 filled at least this much: 70 records in 63 KB)
EVTX_MIN_FILL = 48 * 1024


def sample_paths(samples: Sequence[Path] | None = None) -> list[Path]:
    """`samples` sorted, or else every attack sample."""
    return sorted(samples) if samples is not None else sorted(ATTACK_SAMPLES.rglob("*.evtx"))


def make_bulk_set(target: Path, copies: int, samples: Sequence[Path] | None = None) -> list[Path]:
    """Copy the attack samples (or `samples`) `copies` times under distinct names AND bytes.

    Identical copies would be deduplicated (that is a feature), so each copy gets a unique
    marker in the unused padding of the EVTX file header; parsing is unaffected.
    """
    target.mkdir(parents=True, exist_ok=True)
    samples = sample_paths(samples)
    out = []
    for copy in range(copies):
        for n, sample in enumerate(samples):
            data = bytearray(sample.read_bytes())
            marker = f"casescope-bench-{copy}-{n}".encode()
            start = EVTX_HEADER_PADDING.start
            data[start : start + len(marker)] = marker
            path = target / f"host{copy:03d}" / f"{n:03d} {sample.name}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            out.append(path)
    return out


def evtx_sample_chunks(
    samples: Sequence[Path] | None = None, min_fill: int = EVTX_MIN_FILL
) -> list[tuple[bytes, tuple[int, int]]]:
    """The intact chunks of the attack samples (or `samples`) whose records fill at least
    `min_fill` bytes, in file order (87 chunks, 5.4 MiB), each with its first and last
    record number."""
    chunks = []
    for sample in sample_paths(samples):
        with sample.open("rb") as handle:
            handle.seek(FILE_HEADER_SIZE)
            while len(chunk := handle.read(CHUNK_SIZE)) == CHUNK_SIZE:
                found = chunk_record_range(chunk)
                if found and chunk_fill(chunk) >= min_fill and chunk_is_intact(chunk):
                    chunks.append((chunk, found))
    return chunks


def make_large_evtx(path: Path, size: int, samples: Sequence[Path] | None = None) -> int:
    """Write a valid EVTX file of `size` bytes or a little less (whole chunks, at least one):
    the samples' well-filled chunks, unchanged, repeated; returns its record count.

    The file header is rewritten for the chunks (count, numbers, next record, checksum), so
    the file reads as a healthy log whose record numbers restart with each repeated chunk.
    Written chunk by chunk: only the source chunks (~5 MiB) are held in memory.
    """
    sources = evtx_sample_chunks(samples)
    if not sources:
        raise ValueError("no intact, well-filled EVTX chunk in the samples")
    with sample_paths(samples)[0].open("rb") as handle:
        template = handle.read(FILE_HEADER_SIZE)
    chunks = max(1, (size - FILE_HEADER_SIZE) // CHUNK_SIZE)
    records = 0
    with path.open("wb") as out:
        out.write(bytes(FILE_HEADER_SIZE))  # the header once the chunks are written
        for n in range(chunks):
            chunk, (first, last) = sources[n % len(sources)]
            out.write(chunk)
            records += last - first + 1
        out.seek(0)
        out.write(file_header(template, chunks, next_record=last + 1))
    return records


def make_large_ndjson(path: Path, lines: int) -> Path:
    """An EDR-like NDJSON export with `lines` events (about 330 bytes each)."""
    with path.open("w") as out:
        for n in range(lines):
            out.write(
                f'{{"@timestamp": "2024-03-01T{n // 360000 % 24:02d}:{n // 6000 % 60:02d}:'
                f'{n // 100 % 60:02d}.{n % 100:02d}0Z", "host": {{"name": "ws-{n % 500}"}}, '
                f'"event": {{"code": "{n % 11}", "action": "process_start"}}, '
                f'"process": {{"pid": {n}, "command_line": "C:\\\\Windows\\\\cmd.exe /c '
                f'echo {n}", "parent": {{"name": "explorer.exe"}}}}, '
                f'"user": {{"name": "user{n % 97}"}}}}\n'
            )
    return path


@dataclass
class RssSampler:
    """Samples the RSS of a process tree; keeps each process's peak, and the peak of its
    private part (RSS less the pages of mapped files: chDB's ~550 MB library counts in RSS as
    far as it was touched, and on kernels with large page-cache folios that is hundreds of MB).
    """

    root_pid: int
    interval: float = 0.1
    peaks: dict[int, tuple[str, float]] = field(default_factory=dict)
    #: user+sys CPU seconds of each process, as last sampled (a lower bound at its exit).
    cpu: dict[int, float] = field(default_factory=dict)
    #: of that, system CPU seconds (file creation, fsync, page faults)
    sys_cpu: dict[int, float] = field(default_factory=dict)
    #: peak RSS less file-backed resident pages (psutil's `shared`), MB
    private_peaks: dict[int, float] = field(default_factory=dict)
    #: user+sys CPU seconds of the whole process tree (set by `run_casescope`).
    cpu_seconds: float = 0.0
    #: the exit code of the process (set by `run_casescope`)
    exit_code: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                root = psutil.Process(self.root_pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                try:
                    memory = proc.memory_info()
                    rss = memory.rss / 2**20
                    role = " ".join(proc.cmdline()[2:5]) or proc.name()
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                self.cpu[proc.pid] = times.user + times.system
                self.sys_cpu[proc.pid] = times.system
                private = (memory.rss - memory.shared) / 2**20
                self.private_peaks[proc.pid] = max(self.private_peaks.get(proc.pid, 0.0), private)
                if rss > self.peaks.get(proc.pid, ("", 0.0))[1]:
                    self.peaks[proc.pid] = (role[:60], rss)

    def stop(self) -> None:
        self._stop.set()

    def report(self) -> str:
        rows = sorted(self.peaks.items(), key=lambda r: -r[1][1])
        worst = rows[0][1][1] if rows else 0.0
        lines = [
            f"  peak RSS {rss:7.1f} MB (private {self.private_peaks.get(pid, 0.0):5.1f})  "
            f"CPU {self.cpu.get(pid, 0.0):6.1f} s (sys {self.sys_cpu.get(pid, 0.0):5.1f})  {role}"
            for pid, (role, rss) in rows[:8]
        ]
        return f"max process RSS: {worst:.1f} MB ({len(rows)} processes)\n" + "\n".join(lines)


def _children_cpu() -> float:
    """User+sys seconds of all waited-for descendants (workers are reaped by their pool)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_casescope(
    args: Sequence[str], home: Path, *, check: bool = True, **env: str
) -> tuple[float, RssSampler]:
    """Run `casescope ARGS` in `home`; returns wall seconds and the RSS sampler. A failed
    command ends the benchmark unless `check` is false (then see `sampler.exit_code`)."""
    environ = {**os.environ, "CASESCOPE_HOME": str(home), **env}
    cpu_before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "casescope", *args], env=environ, stdout=subprocess.DEVNULL
    )
    sampler = RssSampler(proc.pid)
    sampler.start()
    code = proc.wait()
    sampler.stop()
    sampler.cpu_seconds = _children_cpu() - cpu_before
    sampler.exit_code = code
    if check and code != 0:
        raise SystemExit(f"casescope {' '.join(args)} exited with {code}")
    return time.perf_counter() - started, sampler


def percentiles(values: Sequence[float]) -> str:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else ordered * 99
    return f"p50 {q[49]:.1f}  p95 {q[94]:.1f}  p99 {q[98]:.1f}"


def p95(values: Sequence[float]) -> float:
    """The 95th percentile as the nearest rank (the value 95% of the samples do not pass)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
