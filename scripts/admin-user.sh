#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Make sure the demo has an administrator to log in with.
# The password comes from CITYTWIN_ADMIN_PASSWORD, else from .run/admin-password,
# else a new random one is written there (mode 600) — never a fixed default.
set -euo pipefail
LOG_TAG=admin
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_run_dir

file="$RUN_DIR/admin-password"
if [ -z "${CITYTWIN_ADMIN_PASSWORD:-}" ]; then
  if [ ! -s "$file" ]; then
    (umask 077 && "$ROOT/.venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(12))' > "$file")
  fi
  CITYTWIN_ADMIN_PASSWORD=$(cat "$file")
fi
export CITYTWIN_ADMIN_PASSWORD
"$ROOT/.venv/bin/twin" create-user "${CITYTWIN_ADMIN_USER:-admin}" --role administrator --superuser \
  --password-from-env CITYTWIN_ADMIN_PASSWORD
log "administrator '${CITYTWIN_ADMIN_USER:-admin}' ready; password: ${CITYTWIN_ADMIN_PASSWORD:+(from CITYTWIN_ADMIN_PASSWORD or $file)}"
