#!/usr/bin/env bash
# Install casescope into .venv and run the main job on the embedded default: ingest the
# sample EVTX files into a case, then show status, a search and the busiest event ids.
# Usage: scripts/quickstart.sh [EVIDENCE_PATH...]   (default: ../shared/data/evtx/attack-samples)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
export CASESCOPE_HOME="${CASESCOPE_HOME:-$HOME/.casescope}"
evidence=("$@")
[ ${#evidence[@]} -gt 0 ] || evidence=("${CASESCOPE_DATA:-../shared/data}/evtx/attack-samples")
.venv/bin/casescope ingest --case quickstart "${evidence[@]}"
.venv/bin/casescope status --case quickstart
.venv/bin/casescope search --case quickstart 'EventID:4624' --limit 5
