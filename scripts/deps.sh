#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
#
# Install everything CityTwin needs on a Debian 12 machine, idempotently:
#   1. Debian packages (PostgreSQL 15 + PostGIS + pgRouting, Mosquitto, GDAL,
#      GEOS, PROJ, Node.js/npm, Chromium for browser tests);
#   2. the Python virtualenv .venv with `pip install -e '.[dev]'`, then the
#      plate reader's wheel with --no-deps (see setup_plate_reader);
#   3. the map UI's npm packages and build (map_ui/), when it exists.
# Each step is skipped when already done (stamps live in .run/stamps), so
# `make deps` costs well under a second on a prepared machine.
#
# Environment:
#   PYTHON             interpreter used to create .venv (default: python3)
#   CITYTWIN_SKIP_APT  set to 1 to skip the Debian package step entirely
set -euo pipefail
LOG_TAG=deps
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_run_dir

APT_PACKAGES=(
  postgresql-15 postgresql-15-postgis-3 postgresql-15-pgrouting
  mosquitto mosquitto-clients
  gdal-bin libgdal32 libgeos-c1v5 libproj25 binutils
  python3-venv nodejs npm chromium
)

# A package counts as present when dpkg has it installed. For nodejs, npm and
# chromium the command on PATH also counts: NodeSource's `nodejs` package
# ships npm itself and *conflicts* with Debian's `npm`, so installing `npm`
# there would rip out Node.js; likewise node from nvm or another source is fine.
pkg_present() {
  local pkg=$1 cmd=
  case $pkg in
    nodejs) cmd=node ;;
    npm) cmd=npm ;;
    chromium) cmd=chromium ;;
  esac
  if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then
    return 0
  fi
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" = installed ]
}

install_debian_packages() {
  if [ "${CITYTWIN_SKIP_APT:-0}" = 1 ]; then
    log "CITYTWIN_SKIP_APT=1: not checking Debian packages"
    return 0
  fi
  if ! command -v dpkg-query >/dev/null 2>&1; then
    warn "dpkg not found: this is not Debian. Install the equivalents of: ${APT_PACKAGES[*]}"
    warn "then set CITYTWIN_SKIP_APT=1 to silence this check."
    return 0
  fi
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    pkg_present "$pkg" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi

  local sudo=()
  if ! is_root; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      die "missing Debian packages: ${missing[*]}
  and not root and no sudo available. Ask an administrator to run:
    apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    fi
  fi
  log "installing missing Debian packages: ${missing[*]}"
  # `env` because sudo drops DEBIAN_FRONTEND; noninteractive because CI has
  # no stdin. --no-install-recommends keeps Chromium from pulling in a
  # desktop's worth of printing/power-management packages.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q \
    || die "apt-get update failed (network? apt sources?). Fix it and re-run 'make deps'."
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "apt-get install failed for: ${missing[*]}. See the apt output above."
}

setup_venv() {
  local venv="$ROOT/.venv" stamp="$STAMP_DIR/venv" python=${PYTHON:-python3}
  if [ ! -f "$ROOT/pyproject.toml" ]; then
    warn "no pyproject.toml yet: skipping the Python virtualenv"
    return 0
  fi
  # A venv whose interpreter vanished (moved checkout, removed pyenv version)
  # is unusable; recreate it rather than fail obscurely later.
  if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    command -v "$python" >/dev/null 2>&1 \
      || die "Python interpreter '$python' not found. Install python3 (Debian: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3.11."
    "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 \
      || die "'$python' cannot create virtualenvs (no venv/ensurepip). On Debian: apt-get install python3-venv, or set PYTHON=... to another interpreter."
    log "creating .venv with $python ($("$python" -c 'import sys; print(sys.version.split()[0])'))"
    "$python" -m venv --clear "$venv"
    rm -f "$stamp"
  fi
  if [ -f "$stamp" ] && [ ! "$ROOT/pyproject.toml" -nt "$stamp" ] && [ -x "$venv/bin/pytest" ]; then
    return 0
  fi
  log "pip install -e '.[dev]' into .venv"
  # editable_mode=compat puts the checkout on sys.path (a .pth line), so a
  # package added later (a new app folder) is importable without reinstalling.
  "$venv/bin/python" -m pip install --disable-pip-version-check -q \
    --config-settings editable_mode=compat -e "$ROOT[dev]" \
    || die "pip install -e '.[dev]' failed; see the pip output above."
  touch "$stamp"
}

# The plate reader's wheel (cameras/ocr.py) carries PaddleOCR's ONNX models but
# declares a dependency on opencv-python, which would install a second cv2 over
# our opencv-python-headless: install it pinned and --no-deps; the modules it
# really imports are in pyproject.toml. Skipped when that exact version is there.
RAPIDOCR=rapidocr-onnxruntime==1.4.4
setup_plate_reader() {
  local venv="$ROOT/.venv"
  [ -x "$venv/bin/python" ] || return 0
  if "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('rapidocr-onnxruntime') != '${RAPIDOCR#*==}')" \
      >/dev/null 2>&1; then
    return 0
  fi
  log "pip install --no-deps $RAPIDOCR into .venv (plate reading)"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q --no-deps "$RAPIDOCR" \
    || die "pip install --no-deps $RAPIDOCR failed; see the pip output above."
}

setup_map_ui() {
  local ui="$ROOT/map_ui" stamp="$STAMP_DIR/npm"
  [ -f "$ui/package.json" ] || return 0
  # node_modules is only expected when package.json declares dependencies;
  # its absence then means someone removed it and npm must run again.
  local need_modules=0
  if command -v node >/dev/null 2>&1 && (cd "$ui" && node -e \
      'const p = require("./package.json"); process.exit(Object.keys({...p.dependencies, ...p.devDependencies}).length ? 0 : 1)'); then
    need_modules=1
  fi
  if [ -f "$stamp" ] && { [ "$need_modules" = 0 ] || [ -d "$ui/node_modules" ]; } \
     && [ ! "$ui/package.json" -nt "$stamp" ] \
     && { [ ! -f "$ui/package-lock.json" ] || [ ! "$ui/package-lock.json" -nt "$stamp" ]; }; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 \
    || die "npm not found but map_ui/package.json exists. Install Node.js and npm (Debian: apt-get install nodejs npm) and re-run 'make deps'."
  if [ -f "$ui/package-lock.json" ]; then
    log "npm ci in map_ui/"
    (cd "$ui" && npm ci --no-audit --no-fund) || die "npm ci failed in map_ui/; see the npm output above."
  else
    log "npm install in map_ui/ (no package-lock.json: commit the one it writes)"
    (cd "$ui" && npm install --no-audit --no-fund) || die "npm install failed in map_ui/; see the npm output above."
  fi
  if (cd "$ui" && node -e 'process.exit((require("./package.json").scripts || {}).build ? 0 : 1)'); then
    log "npm run build in map_ui/"
    (cd "$ui" && npm run build) || die "npm run build failed in map_ui/; see the output above."
  fi
  touch "$stamp"
}

install_debian_packages
setup_venv
setup_plate_reader
setup_map_ui
