# SPDX-License-Identifier: AGPL-3.0-or-later
# Shared helpers for scripts/*.sh. Sourced, never executed.
# shellcheck shell=bash

# Without this, `set -e` is off inside $(...) and a failing helper called as
# x=$(helper) would carry on with an empty value.
shopt -s inherit_errexit

# Repository root, resolved physically so hashes and paths are stable.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
RUN_DIR="$ROOT/.run"
STAMP_DIR="$RUN_DIR/stamps"

log()  { printf '[%s] %s\n' "${LOG_TAG:-citytwin}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${LOG_TAG:-citytwin}" "$*" >&2; }
die()  { printf '[%s] ERROR: %s\n' "${LOG_TAG:-citytwin}" "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# .run must be traversable by the postgres/mosquitto users when we run as
# root, so do not let a restrictive umask (077) make it private.
ensure_run_dir() {
  mkdir -p "$RUN_DIR" "$STAMP_DIR"
  chmod 755 "$RUN_DIR" 2>/dev/null || true
}
