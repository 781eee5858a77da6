#!/usr/bin/env bash
# Install, with apt-get, the system packages the tests need: Debian's chromium (driven by Playwright), npm
# (to fetch the pages' scripts into .cache/browser-assets) and postgresql (the ledger's PostgreSQL tests run
# against a real server that .ci/start-postgres.sh starts). Run by .ci/run, and by scripts/test.sh
# only when CI is set or it is given --install-system; never otherwise. Needs root and apt-get.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(npm)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ "${#missing[@]}" = 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "cannot install ${missing[*]}: this needs root and apt-get (Debian/Ubuntu)" >&2
  exit 1
fi
echo "installing ${missing[*]} with apt-get"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
