#!/usr/bin/env bash
# Install the Python dev tools and the browser assets the pages ask for (with npm, into .cache/), and run
# the whole suite. The same script runs in CI (.ci/run).
#
# Usage: bash scripts/test.sh [--install-system] [PYTEST ARGS...]
#
# System packages (Debian's chromium and npm) are installed with apt-get only under CI (env CI set) or with
# --install-system. Without them, outside CI, the browser tests are skipped with the reason; under CI they
# fail (tests/browser_support.py).
set -euo pipefail
cd "$(dirname "$0")/.."
install_system=0
if [ "${1:-}" = "--install-system" ]; then
  install_system=1
  shift
fi
if [ -n "${CI:-}" ] || [ "$install_system" = 1 ]; then
  bash .ci/install-system.sh
fi
bash scripts/setup.sh --dev
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "chromium is not installed: the browser tests will be skipped" \
       "(install Debian's chromium, or run: bash scripts/test.sh --install-system)" >&2
fi
if command -v npm >/dev/null 2>&1; then
  bash .ci/install-browser-assets.sh
elif [ -n "${CI:-}" ]; then
  echo "npm not found under CI: the browser assets cannot be installed" >&2
  exit 1
else
  echo "npm is not installed: the browser assets cannot be fetched, so the browser tests will be skipped" \
       "(install npm, or run: bash scripts/test.sh --install-system)" >&2
fi
set +e
.venv/bin/python -m pytest -n 2 "$@"
status=$?
set -e
if [ "$status" = "5" ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
