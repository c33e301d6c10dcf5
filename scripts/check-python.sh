#!/usr/bin/env bash
# Refuse an interpreter older than 3.11 with one clear line.
set -euo pipefail
py="${1:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
  echo "error: $py not found; install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "error: carbonbook needs Python >= 3.11, $py is $("$py" -V 2>&1)" >&2
  exit 1
fi
if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-venv >/dev/null
  else
    echo "error: $py has no venv/ensurepip module (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
fi
