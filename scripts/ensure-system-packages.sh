#!/usr/bin/env bash
# Install what the tests need from Debian where we are root and it is missing:
# PostgreSQL's server, Chromium (never a browser download), and CJK fonts for the pages.
set -uo pipefail
[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || exit 0
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
# grep reads all of fc-list's output: with -q it would stop at the first match, fc-list would
# die of SIGPIPE, and pipefail would call the installed fonts missing (an apt-get every run).
fc-list : family 2>/dev/null | grep -i 'noto.*cjk' >/dev/null || need+=(fonts-noto-cjk)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing from Debian: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
  || echo "warning: could not install ${need[*]}" >&2
# Debian's postgresql package starts a system cluster we do not use; stop it quietly.
if printf '%s\n' "${need[@]}" | grep -qx postgresql; then
  (service postgresql stop || pg_ctlcluster --help) >/dev/null 2>&1 || true
fi
exit 0
