#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it:
#   scripts/test.sh [pytest arguments...]
# Installs Chromium and PostgreSQL (Debian packages) only when missing, creates .venv (Python 3.11) when missing,
# installs requirements-dev.txt only when requirements*.txt changed since the last install (scripts/venv.sh keeps
# a stamp of their sha256 in .venv), then runs pytest.
# Idempotent; works from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[test.sh] %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    fi
fi

apt_updated=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get is not available; install these yourself: $*"
        return 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        "${SUDO[@]}" apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- system packages -------------------------------------------------------------------------------------------
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)  # Debian's python3 lacks ensurepip (so `python3 -m venv` fails) without it
fi
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# --- virtualenv (shared with scripts/run.sh: same .venv, same requirements stamp) ---------------------------------
version="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$version" = "3.11" ] || log "warning: python3 is $version; DA Daily is pinned and tested on Python 3.11"
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
ensure_venv requirements-dev.txt  # pip install only when requirements*.txt changed since the last install

# --- tests -----------------------------------------------------------------------------------------------------
exec .venv/bin/python -m pytest "$@"
