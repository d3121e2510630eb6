#!/usr/bin/env bash
# The team-mode tests against a real ClickHouse server (docs/deploy.md, "What the tests
# exercise"). Without CASESCOPE_TEST_CLICKHOUSE_URL it says so and exits 0: the suite
# itself runs the same tests on clickhouse-connect's in-process chDB interface.
#   CASESCOPE_TEST_CLICKHOUSE_URL=clickhouse://casescope:PASS@ch.example:8123/casescope \
#     scripts/team-smoke.sh [pytest args...]
# Each test EMPTIES the server's casescope.events first (it counts every row): point it at
# a throwaway server or database, never at a team's real index.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${CASESCOPE_TEST_CLICKHOUSE_URL:-}" ]]; then
  echo "team-smoke: CASESCOPE_TEST_CLICKHOUSE_URL is not set: skipped (no server to test)"
  exit 0
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet -e '.[test]'
scripts/postgres.sh >/dev/null  # the tests' own PostgreSQL cluster
exec .venv/bin/python -m pytest -n 0 -p no:cacheprovider \
  tests/integration/team tests/e2e/test_team_cli.py tests/e2e/test_team_shared_index.py \
  tests/e2e/test_team_web.py "$@"
