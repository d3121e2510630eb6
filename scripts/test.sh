#!/usr/bin/env bash
# Install casescope with its test dependencies into .venv and run the whole test suite.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
scripts/browser.sh  # Debian chromium + playwright for tests/browser (skips there if absent)
scripts/postgres.sh >/dev/null  # PostgreSQL's server binaries: the tests start their own cluster
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/lint-imports  # layers point down (pyproject.toml, docs/architecture.md)
# One process per core, at most 4 (each test may start a pool of 2 workers and an index
# owner), one test file each at a time (module fixtures such as an ingested home or a running
# server are built once); `-n 0` runs in this process, a later `-n N` wins. Each run prints
# its 25 slowest test phases, so a CI log shows where the suite's time went.
cores=$(nproc)
exec .venv/bin/python -m pytest -n $((cores < 4 ? cores : 4)) --dist loadfile --durations=25 "$@"
