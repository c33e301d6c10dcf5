#!/usr/bin/env bash
# Vendor htmx and ECharts from their npm packages into the Python package: no CDN at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/carbonbook/web/static/vendor
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq nodejs npm >/dev/null
  else
    echo "error: npm is needed to vendor htmx and ECharts (Debian: apt-get install npm)" >&2
    exit 1
  fi
fi
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --silent
else
  npm install --no-audit --no-fund --silent
fi
mkdir -p "$dest"
cp node_modules/htmx.org/dist/htmx.min.js "$dest/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$dest/htmx.LICENSE"
cp node_modules/echarts/dist/echarts.min.js "$dest/echarts.min.js"
cp node_modules/echarts/LICENSE "$dest/echarts.LICENSE"
touch "$dest/htmx.min.js" "$dest/echarts.min.js"
echo "vendored htmx $(node -p "require('./node_modules/htmx.org/package.json').version") and echarts $(node -p "require('./node_modules/echarts/package.json').version") into $dest"
