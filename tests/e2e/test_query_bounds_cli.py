"""`casescope search` and `export`: a query past its bound or over the size limits is one
clear line and exit status 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Cli

TIMEOUT = "error: query took too long (1e-06 s): narrow the time range or the query"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("bounds") / "home")
    sample = sorted(attack_samples.rglob("*Sysmon*.evtx"))[0]
    cli.run("ingest", "--case", "b", str(sample))
    return cli


def _refused(proc, text: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert text in " ".join(proc.stderr.split())  # Rich may wrap the line
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("setting", "command"),
    [
        ("CASESCOPE_QUERY_TIMEOUT_SECONDS", ("search", "--case", "b", "exe")),
        (
            "CASESCOPE_LONG_QUERY_TIMEOUT_SECONDS",
            ("search", "--case", "b", "--format", "csv", "exe"),
        ),
        ("CASESCOPE_LONG_QUERY_TIMEOUT_SECONDS", ("export", "--case", "b", "--format", "jsonl")),
    ],
)
def test_a_query_past_its_time_bound_is_a_clear_error(
    case: Cli, setting: str, command: tuple[str, ...]
) -> None:
    bounded = Cli(case.home, {setting: "0.000001"})
    _refused(bounded.run(*command, check=False), TIMEOUT)
    assert case.run(*command).returncode == 0  # with the default bounds it answers


def test_a_query_over_the_size_limits_is_a_clear_error(case: Cli) -> None:
    terms = " OR ".join(f"w{n}" for n in range(201))
    _refused(case.run("search", "--case", "b", terms, check=False), "more than 200 terms")
    limited = Cli(case.home, {"CASESCOPE_QUERY_MAX_CHARS": "10"})
    proc = limited.run("export", "--case", "b", "--format", "csv", "-q", "x" * 11, check=False)
    _refused(proc, "longer than 10 characters (CASESCOPE_QUERY_MAX_CHARS)")
