#!/usr/bin/env bash
# Install everything the tests need (Python dev extras, Debian's chromium, the browser assets the pages ask
# for) and run the whole suite. The same script runs in CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is not installed: browser tests will be skipped (install Debian's chromium to run them)" >&2
  fi
fi
if [ -f .ci/install-browser-assets.sh ]; then
  bash .ci/install-browser-assets.sh
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
