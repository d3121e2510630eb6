"""Benchmark: how fast the everyday CLI commands answer on a small case.

Builds the case once (or reuses it with `--home`): SigmaHQ's Windows Security rules imported,
every attack sample ingested. Then runs each command `--runs` times as a user runs it: the
`casescope` script of this environment in a fresh process, from another working directory,
stdout to a pipe that is read and dropped. The commands take turns (one run of each, then
the next round), so a burst of load on the shared machine spreads over all of them. Prints
median and p95 wall time, the median CPU time (user + system: on an idle machine the wall
time of a start-up is about its CPU time) and the median peak RSS per command, then, for
the slowest command, the modules that `python -X importtime` finds slowest to import (self
time) and the top-level packages that took the most import time in all.

With `--baseline SRC`, each command also runs with another checkout's `src` first on
PYTHONPATH, right after the same command of this one: before/after on the same machine load.

`--instructions NAME ...` also runs each named command (and its baseline) once under
valgrind's callgrind and prints the instructions it executed: a count that the load of the
shared machine does not change, where its wall and CPU times do (a run takes ~50x longer;
`--runs 0` skips the timed runs).

Each tree is byte-compiled first, as `pip install` leaves an installed package: where
PYTHONDONTWRITEBYTECODE is set (as on the shared machine) and the checkout has no
`__pycache__`, every run would otherwise compile casescope's modules from source.

Usage: .venv/bin/python bench/cli.py [--home DIR] [--runs 7] [--top 15] [--baseline SRC]
                                     [--instructions NAME ...]
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import ATTACK_SAMPLES, DATA, p95, run_casescope

CASE = "bench-cli"
MARKER = "bench-cli.txt"
#: The commands an analyst types many times a day (issue 27's list), as argument lists.
COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "case list": ["case", "list"],
    "status": ["status"],
    "files": ["files", "--case", CASE],
    "detections": ["detections", "--case", CASE],
    "search": ["search", "--case", CASE, "logon"],
}
#: `casescope` of the environment running this script (the console script pip installed).
CASESCOPE = str(Path(sys.executable).with_name("casescope"))


@dataclass
class Timings:
    walls: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


def build(home: Path) -> None:
    rules = home.parent / "bench-cli-rules"
    shutil.rmtree(rules, ignore_errors=True)
    shutil.copytree(DATA / "sigma" / "rules" / "windows" / "builtin" / "security", rules)
    run_casescope(["rules", "import", str(rules), "--name", "sigmahq"], home)
    run_casescope(["ingest", "--case", CASE, str(ATTACK_SAMPLES)], home)
    (home / MARKER).write_text(CASE)


def run_once(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of one `casescope ARGS`:
    its own rusage, by wait4."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [CASESCOPE, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err
        )
        assert proc.stdout is not None
        while proc.stdout.read(1 << 16):  # read to the end as a pager would, dropped
            pass
        # wait4, not Popen.wait: the child's own rusage, so its own peak RSS
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        proc.stdout.close()
        if code != 0:
            err.seek(0)
            message = err.read().decode(errors="replace")[-500:]
            raise SystemExit(f"casescope {' '.join(args)} exited with {code}: {message}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure(variants: dict[str, dict[str, str]], cwd: Path, runs: int) -> dict[str, Timings]:
    """Each command under each variant (label suffix -> environment), `runs` rounds."""
    timings: dict[str, Timings] = defaultdict(Timings)
    for _ in range(runs):
        for name, args in COMMANDS.items():
            for suffix, env in variants.items():
                wall, cpu, rss = run_once(args, env, cwd)
                timings[name + suffix].walls.append(wall)
                timings[name + suffix].cpu.append(cpu)
                timings[name + suffix].rss_mb.append(rss)
    return timings


def report(timings: dict[str, Timings]) -> None:
    print(f"{'command':<23} {'median s':>9} {'p95 s':>7} {'CPU s':>6} {'peak RSS MB':>12}")
    for name, t in timings.items():
        print(
            f"{name:<23} {statistics.median(t.walls):9.2f} {p95(t.walls):7.2f} "
            f"{statistics.median(t.cpu):6.2f} {statistics.median(t.rss_mb):12.0f}"
        )


def instructions(args: list[str], env: dict[str, str], cwd: Path) -> int:
    """Instructions that one `casescope ARGS` executes, counted by callgrind."""
    callgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    proc = subprocess.run(
        [*callgrind, sys.executable, "-m", "casescope", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"callgrind of casescope {' '.join(args)}: {proc.stderr[-500:]}")
    return int(found.group(1))


def report_instructions(names: list[str], variants: dict[str, dict[str, str]], cwd: Path) -> None:
    print(f"\n{'command':<23} {'instructions (millions)':>24}")
    for name in names:
        for suffix, env in variants.items():
            count = instructions(COMMANDS[name], env, cwd)
            print(f"{name + suffix:<23} {count / 1e6:24,.0f}", flush=True)


def import_profile(args: list[str], env: dict[str, str], cwd: Path, top: int) -> None:
    """`python -X importtime` of one command: the slowest modules (self time) and packages."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "casescope", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    modules: list[tuple[int, str]] = []
    packages: dict[str, int] = defaultdict(int)
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        name = name.strip()
        modules.append((int(self_us), name))
        packages[name.split(".")[0]] += int(self_us)
    total = sum(us for us, _ in modules)
    print(f"\nimports of `casescope {' '.join(args)}`: {len(modules)} modules, {total / 1e6:.2f} s")
    print("slowest modules (self time):")
    for us, name in sorted(modules, reverse=True)[:top]:
        print(f"  {us / 1000:7.1f} ms  {name}")
    print("packages (sum of their modules' self time):")
    for name, us in sorted(packages.items(), key=lambda p: -p[1])[:top]:
        print(f"  {us / 1000:7.1f} ms  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, help="Reuse (or build once in) this home.")
    parser.add_argument("--runs", type=int, default=7, help="Runs of each command.")
    parser.add_argument("--top", type=int, default=15, help="Modules and packages listed.")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="The `src` folder of another checkout (e.g. from `git archive`): each command "
        "also runs with it first on PYTHONPATH, taking turns with this one.",
    )
    parser.add_argument(
        "--instructions",
        nargs="+",
        choices=list(COMMANDS),
        default=[],
        metavar="NAME",
        help="Count the instructions of these commands under callgrind (needs valgrind).",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cs-bench-cli-") as tmp:
        home = (args.home or Path(tmp) / "home").resolve()
        if not (home / MARKER).exists():
            print(f"building the case in {home} ...", flush=True)
            build(home)
        env = {**os.environ, "CASESCOPE_HOME": str(home)}
        cwd = Path(tmp)  # not the repository: nothing is found on sys.path by accident
        variants = {"": env}
        compileall.compile_dir(ROOT / "src", quiet=1)
        if args.baseline:
            baseline = str(args.baseline.resolve())
            compileall.compile_dir(baseline, quiet=1)
            variants[" (baseline)"] = {**env, "PYTHONPATH": baseline}
        if args.runs > 0:
            before = os.getloadavg()[0]
            timings = measure(variants, cwd, args.runs)
            # the machine is shared: a load above its cores slows every figure alike
            print(f"load average {before:.1f} before, {os.getloadavg()[0]:.1f} after")
            report(timings)
            slowest = max(COMMANDS, key=lambda n: statistics.median(timings[n].walls))
            import_profile(COMMANDS[slowest], env, cwd, args.top)
        report_instructions(args.instructions, variants, cwd)


if __name__ == "__main__":
    main()
