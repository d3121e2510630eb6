#!/usr/bin/env bash
# Install what the browser tests need: Debian's chromium (apt-get) and the Playwright Python
# package. Playwright never downloads browsers here: tests launch the Debian chromium through
# `executable_path`. Exits 0 even when chromium cannot be installed (no network, not root):
# the browser test then skips and says why.
# Usage: scripts/browser.sh
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium with apt-get..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      || echo "warning: chromium could not be installed; browser tests will skip" >&2
  else
    echo "warning: chromium missing and apt-get unavailable (or not root)" >&2
  fi
fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/python -m pip install --quiet 'playwright==1.65.2' \
  || echo "warning: playwright could not be installed; browser tests will skip" >&2
exit 0
