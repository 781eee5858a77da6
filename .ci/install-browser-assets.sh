#!/usr/bin/env bash
# Install, from the npm registry, local copies of the scripts and styles that folium and plotly pages load
# from CDNs, so the browser tests (tests/test_browser.py) run with no request leaving the machine.
# tests/browser_support.py maps each CDN URL onto these packages; the versions below are the ones in the
# URLs that folium 0.20 and plotly 7.1 (plotly.js 4.1.1) emit. When folium or plotly is upgraded and the
# URLs change, the browser test fails naming the URL: update the version here.
#
# Usage: .ci/install-browser-assets.sh [DIR]   (default: $SYMBIOSIS_BROWSER_ASSETS or .cache/browser-assets)
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-${SYMBIOSIS_BROWSER_ASSETS:-$top/.cache/browser-assets}}

packages=(
  "leaflet@1.9.3"                          # cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/...
  "jquery@3.7.1"                           # code.jquery.com/jquery-3.7.1.min.js -> dist/jquery.min.js
  "bootstrap@5.2.2"                        # cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/...
  "@fortawesome/fontawesome-free@6.2.0"    # cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/...
  "leaflet.awesome-markers@2.0.5"          # cdnjs .../Leaflet.awesome-markers/2.0.2/... (npm has no 2.0.2;
                                           #   2.0.0-2.0.5 all ship the same dist files) -> dist/...
  "leaflet.markercluster@1.1.0"            # cdnjs .../leaflet.markercluster/1.1.0/... -> dist/...
  "bootstrap3@npm:bootstrap@3.4.1"         # netdna .../bootstrap/3.0.0/css/bootstrap-glyphicons.css: the
                                           #   glyphicon rules are cut from dist/css/bootstrap.css
  "plotly.js-dist-min@4.1.1"               # cdn.plot.ly/plotly-4.1.1.min.js -> plotly.min.js
)

installed_version() {  # package folder name -> version in its package.json, or nothing
  local manifest="$dir/node_modules/$1/package.json"
  [ -f "$manifest" ] && sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$manifest" | head -n 1
}

missing=0
for spec in "${packages[@]}"; do
  want=${spec##*@}
  case "$spec" in
    *@npm:*) name=${spec%%@npm:*} ;;    # an alias installs under its own folder name
    *) name=${spec%@*} ;;
  esac
  [ "$(installed_version "$name")" = "$want" ] || missing=1
done

if [ "$missing" = 0 ]; then
  echo "browser assets already in $dir"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: install Node.js and npm (Debian: apt-get install -y npm, or .ci/install-system.sh)" >&2
  exit 1
fi

mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --no-progress --loglevel=error "${packages[@]}"
echo "browser assets installed in $dir"
