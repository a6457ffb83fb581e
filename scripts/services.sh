#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
#
# Project-local services for development and tests:
#   scripts/services.sh start    start PostgreSQL 15 (+PostGIS, pgRouting) and
#                                Mosquitto if not running; write .run/env
#   scripts/services.sh stop     stop both
#   scripts/services.sh status   show both; exit 0 only if both are up
#   scripts/services.sh destroy  stop both and delete their data (the next
#                                start begins with an empty cluster)
#
# They run beside any system PostgreSQL (5432) or Mosquitto (1883) on their
# own ports, own data and own sockets, so nothing on the machine is touched.
#
# Environment:
#   DATABASE_URL / MQTT_URL   use this external service instead; start nothing
#                             for it (its URL is passed on in .run/env)
#   CITYTWIN_PG_PORT          PostgreSQL port (default 55432; if the default is
#                             taken by something else, the next free one)
#   CITYTWIN_MQTT_PORT        Mosquitto port (default 51883; same rule)
#   CITYTWIN_MQTT_DEVICE_PORT Mosquitto's authenticated device listener
#                             (default: the Mosquitto port + 1; same rule)
#   CITYTWIN_MQTT_DEVICE_BIND its address (default 127.0.0.1)
#   CITYTWIN_PG_BIN           PostgreSQL server binaries (default
#                             /usr/lib/postgresql/15/bin, Debian's place)
set -euo pipefail
LOG_TAG=services
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_BIN=${CITYTWIN_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DEFAULT_PORT=55432
MQTT_DEFAULT_PORT=51883
DB_NAME=citytwin
ENV_FILE="$RUN_DIR/env"
MQ_DIR="$RUN_DIR/mosquitto"
MQ_TEMPLATE="$ROOT/docker/mosquitto.conf.in"

# ---------------------------------------------------------------- ports ----

# True if something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# pick_port NAME PREFERRED EXPLICIT_VAR_NAME
# An explicitly requested port must be free; otherwise we move up from the
# preferred one, so a second checkout (or a CI clone) on the same machine
# gets its own services instead of failing.
pick_port() {
  local name=$1 preferred=$2 var=$3 p
  if ! port_in_use "$preferred"; then
    echo "$preferred"; return 0
  fi
  if [ -n "${!var:-}" ]; then
    die "$name port $preferred (from $var) is already in use by another program. Pick another: $var=NNNNN make services"
  fi
  for p in $(seq $((preferred + 1)) $((preferred + 100))); do
    if ! port_in_use "$p"; then
      warn "$name port $preferred is taken by another program; using $p"
      echo "$p"; return 0
    fi
  done
  die "no free $name port in $preferred..$((preferred + 100)); set $var"
}

# ----------------------------------------------------------- PostgreSQL ----

# initdb, pg_ctl and postgres refuse to run as root: run them as the
# `postgres` system user then (cd / so it never warns about our cwd).
pg_run() {
  if is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Where the cluster lives. Normally .run/pg. As root, the postgres user must
# be able to reach it: a checkout under /root (mode 700) is not reachable,
# so the cluster goes to /var/tmp/citytwin-pg-<hash of the checkout path>.
# The same happens if the path is too long for a Unix socket (~107 bytes).
# The choice is remembered in .run/pg.path so stop/status find it again.
pg_base() {
  local saved="$RUN_DIR/pg.path" base
  if [ -f "$saved" ]; then
    base=$(cat "$saved")
    if [ -d "$base" ]; then echo "$base"; return 0; fi
  fi
  base="$RUN_DIR/pg"
  local reachable=1 sock_suffix="/sock/.s.PGSQL.$PG_DEFAULT_PORT.lock"
  if is_root; then
    id -u postgres >/dev/null 2>&1 \
      || die "system user 'postgres' not found: is postgresql-15 installed? Run 'make deps'."
    (cd / && runuser -u postgres -- test -x "$RUN_DIR") || reachable=0
  fi
  if [ "$reachable" = 0 ] || [ $(( ${#base} + ${#sock_suffix} )) -gt 100 ]; then
    base="/var/tmp/citytwin-pg-$(printf '%s' "$ROOT" | sha1sum | cut -c1-10)"
  fi
  echo "$base" >"$saved"
  echo "$base"
}

# Create the cluster directory with the right owner; refuse a directory in
# /var/tmp that someone else made (it is world-writable).
pg_prepare_base() {
  local base=$1 owner
  if is_root; then
    mkdir -p "$base"
    owner=$(stat -c %U "$base")
    case $owner in
      root|postgres) ;;
      *) die "$base is owned by '$owner', not postgres. Remove it or set up the checkout elsewhere." ;;
    esac
    chown postgres:postgres "$base"
  else
    mkdir -p "$base"
    [ -O "$base" ] || die "$base is not owned by you ($(id -un)). Remove it and retry."
  fi
  chmod 700 "$base"
}

pg_running() {
  local data=$1
  [ -f "$data/PG_VERSION" ] && pg_run "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

pg_psql() {
  local port=$1; shift
  PGOPTIONS='-c client_min_messages=warning' "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

# Database and extensions. PostGIS is not a trusted extension and Django
# creates its test database from template1, so template1 gets them too.
pg_setup_db() {
  local port=$1 db
  pg_psql "$port" -d template1 \
    -c 'CREATE EXTENSION IF NOT EXISTS postgis' \
    -c 'CREATE EXTENSION IF NOT EXISTS pgrouting' \
    || die "could not create postgis/pgrouting in template1. Is postgresql-15-postgis-3 / postgresql-15-pgrouting installed? Run 'make deps'."
  if [ "$(pg_psql "$port" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
    log "creating database $DB_NAME"
    pg_psql "$port" -d postgres -c "CREATE DATABASE $DB_NAME"
  fi
  pg_psql "$port" -d "$DB_NAME" \
    -c 'CREATE EXTENSION IF NOT EXISTS postgis' \
    -c 'CREATE EXTENSION IF NOT EXISTS pgrouting'
}

# Prints the URL on stdout; everything else goes to stderr.
pg_start() {
  [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] \
    || die "PostgreSQL 15 server binaries not found in $PG_BIN. Run 'make deps' (Debian: apt-get install postgresql-15 postgresql-15-postgis-3 postgresql-15-pgrouting) or set CITYTWIN_PG_BIN."
  local base data sock logf port
  base=$(pg_base); data="$base/data"; sock="$base/sock"; logf="$base/postgres.log"
  pg_prepare_base "$base"

  if pg_running "$data"; then
    port=$(sed -n 4p "$data/postmaster.pid")
    log "PostgreSQL already running on 127.0.0.1:$port ($data)"
  else
    if [ ! -f "$data/PG_VERSION" ]; then
      # A half-made data dir (interrupted initdb) would make initdb refuse.
      rm -rf "$data"
      log "initdb $data"
      # C.UTF-8 always exists on Debian; without it a CI shell with no LANG
      # would get an SQL_ASCII cluster. Trust auth: local, loopback-only.
      pg_run "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 --no-instructions >"$RUN_DIR/initdb.log" 2>&1 \
        || { cat "$RUN_DIR/initdb.log" >&2; die "initdb failed (output above)"; }
      printf '\n# CityTwin (scripts/services.sh)\njit = off\n' >>"$data/postgresql.conf"
    fi
    pg_run mkdir -p "$sock"
    local preferred=${CITYTWIN_PG_PORT:-}
    [ -n "$preferred" ] || preferred=$(cat "$base/port" 2>/dev/null || echo "$PG_DEFAULT_PORT")
    port=$(pick_port PostgreSQL "$preferred" CITYTWIN_PG_PORT)
    log "starting PostgreSQL on 127.0.0.1:$port (data: $data, log: $logf)"
    # pg_ctl hands -o to /bin/sh, hence the inner quotes around the path. 300 connections: the
    # demo runs a web server (ASGI: a session per request), ingestion, cameras and timers, and
    # the browser tests start their own servers beside the suite's (100 ran out).
    if ! pg_run "$PG_BIN/pg_ctl" -D "$data" -l "$logf" -w -t 60 \
         -o "-p $port -k '$sock' -c listen_addresses=127.0.0.1 -c max_connections=${CITYTWIN_PG_MAX_CONNECTIONS:-300}" \
         start >/dev/null; then
      tail -n 30 "$logf" >&2 || true
      die "PostgreSQL did not start (log above: $logf)"
    fi
    pg_run sh -c "echo $port > '$base/port'"
  fi
  pg_setup_db "$port"
  echo "postgres://postgres@127.0.0.1:$port/$DB_NAME"
}

pg_stop() {
  local base data
  [ -f "$RUN_DIR/pg.path" ] || return 0
  base=$(cat "$RUN_DIR/pg.path"); data="$base/data"
  if pg_running "$data"; then
    log "stopping PostgreSQL ($data)"
    pg_run "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
  fi
}

pg_status() {
  local base data
  base=$(cat "$RUN_DIR/pg.path" 2>/dev/null || true); data="$base/data"
  if [ -n "$base" ] && pg_running "$data"; then
    echo "postgresql: running on 127.0.0.1:$(sed -n 4p "$data/postmaster.pid") ($data)"
  else
    echo "postgresql: stopped"; return 1
  fi
}

# ------------------------------------------------------------- Mosquitto ----

mq_bin() {
  # /usr/sbin is not on a normal user's PATH on Debian.
  command -v mosquitto 2>/dev/null || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true
}

# PID of our broker, if alive (checking the name guards against a reused PID).
mq_pid() {
  local pid
  pid=$(cat "$MQ_DIR/mosquitto.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mosquitto ] && echo "$pid"
}

mq_ready() {
  local port=$1
  if command -v mosquitto_pub >/dev/null 2>&1; then
    mosquitto_pub -h 127.0.0.1 -p "$port" -t citytwin/_ready -n -q 0 >/dev/null 2>&1
  else
    port_in_use "$port"
  fi
}

mq_start() {
  local bin port pid i
  bin=$(mq_bin)
  [ -n "$bin" ] || die "mosquitto not found. Run 'make deps' (Debian: apt-get install mosquitto mosquitto-clients)."
  mkdir -p "$MQ_DIR"
  if pid=$(mq_pid); then
    port=$(cat "$MQ_DIR/port")
    log "Mosquitto already running on 127.0.0.1:$port (pid $pid)"
  else
    local preferred=${CITYTWIN_MQTT_PORT:-}
    [ -n "$preferred" ] || preferred=$(cat "$MQ_DIR/port" 2>/dev/null || echo "$MQTT_DEFAULT_PORT")
    port=$(pick_port Mosquitto "$preferred" CITYTWIN_MQTT_PORT)
    # As root, mosquitto drops to user `mosquitto`, which may not reach this
    # directory (e.g. a checkout under /root); keep root for this local,
    # loopback-only broker instead.
    local user_line=""
    is_root && user_line="user root"
    [ -f "$MQ_TEMPLATE" ] || die "missing $MQ_TEMPLATE"
    # The device listener (password + ACL) sits above the anonymous one;
    # its files are written by `twin mqtt-passwords` and must exist to start.
    local device_port
    device_port=$(pick_port "Mosquitto device" "${CITYTWIN_MQTT_DEVICE_PORT:-$((port + 1))}" CITYTWIN_MQTT_DEVICE_PORT)
    [ "$device_port" != "$port" ] || die "the Mosquitto device port must differ from $port"
    (umask 077 && touch "$MQ_DIR/passwd" "$MQ_DIR/acl")
    sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$MQ_DIR|g" -e "s|@USER_LINE@|$user_line|g" \
      -e "s|@DEVICE_PORT@|$device_port|g" -e "s|@DEVICE_BIND@|${CITYTWIN_MQTT_DEVICE_BIND:-127.0.0.1}|g" \
      "$MQ_TEMPLATE" >"$MQ_DIR/mosquitto.conf"
    echo "$port" >"$MQ_DIR/port"
    echo "$device_port" >"$MQ_DIR/device_port"
    rm -f "$MQ_DIR/mosquitto.pid"
    log "starting Mosquitto on 127.0.0.1:$port (log: $MQ_DIR/mosquitto.log)"
    # Its stderr goes to a file: as root it always warns about running as
    # root (intended, see above); shown only if the start fails.
    "$bin" -d -c "$MQ_DIR/mosquitto.conf" 2>"$MQ_DIR/start.log" \
      || { cat "$MQ_DIR/start.log" >&2; tail -n 20 "$MQ_DIR/mosquitto.log" >&2 2>/dev/null || true; die "Mosquitto did not start"; }
  fi
  for i in $(seq 1 50); do
    if mq_ready "$port"; then
      echo "mqtt://127.0.0.1:$port"; return 0
    fi
    sleep 0.2
  done
  cat "$MQ_DIR/start.log" >&2 2>/dev/null || true
  tail -n 20 "$MQ_DIR/mosquitto.log" >&2 2>/dev/null || true
  die "Mosquitto on 127.0.0.1:$port does not accept connections (log above: $MQ_DIR/mosquitto.log)"
}

mq_stop() {
  local pid i
  pid=$(mq_pid) || return 0
  log "stopping Mosquitto (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$MQ_DIR/mosquitto.pid"; return 0; }
    sleep 0.2
  done
  warn "Mosquitto (pid $pid) ignored SIGTERM for 10 s; killing it"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$MQ_DIR/mosquitto.pid"
}

mq_status() {
  local pid
  if pid=$(mq_pid); then
    local devices=""
    if [ -f "$MQ_DIR/device_port" ]; then
      devices=", devices (password + ACL) on port $(cat "$MQ_DIR/device_port")"
    fi
    echo "mosquitto:  running on 127.0.0.1:$(cat "$MQ_DIR/port") (pid $pid)$devices"
  else
    echo "mosquitto:  stopped"; return 1
  fi
}

# ------------------------------------------------------------------ main ----

# A URL we wrote ourselves earlier (someone sourced .run/env into their
# shell) is not an external service: keep managing the local one.
is_external() {
  local var=$1 mine=$2
  [ -n "${!var:-}" ] && [ "${!var}" != "${!mine:-}" ]
}

shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

write_env() {
  local db=$1 mq=$2 local_db=$3 local_mq=$4 tmp="$ENV_FILE.tmp.$$"
  {
    echo "# Written by scripts/services.sh start; sourced by the Makefile."
    echo "export DATABASE_URL=$(shq "$db")"
    echo "export MQTT_URL=$(shq "$mq")"
    echo "export CITYTWIN_LOCAL_DATABASE_URL=$(shq "$local_db")"
    echo "export CITYTWIN_LOCAL_MQTT_URL=$(shq "$local_mq")"
    # The local broker's authenticated device listener, when its config has one.
    if [ -n "$local_mq" ] && [ -f "$MQ_DIR/device_port" ] \
       && grep -q "^listener $(cat "$MQ_DIR/device_port") " "$MQ_DIR/mosquitto.conf" 2>/dev/null; then
      echo "export MQTT_DEVICE_URL=$(shq "mqtt://127.0.0.1:$(cat "$MQ_DIR/device_port")")"
    fi
  } >"$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

cmd_start() {
  ensure_run_dir
  local db mq local_db="" local_mq=""
  if is_external DATABASE_URL CITYTWIN_LOCAL_DATABASE_URL; then
    db=$DATABASE_URL
    log "DATABASE_URL is set: using it, not starting PostgreSQL"
  else
    db=$(pg_start); local_db=$db
  fi
  if is_external MQTT_URL CITYTWIN_LOCAL_MQTT_URL; then
    mq=$MQTT_URL
    log "MQTT_URL is set: using it, not starting Mosquitto"
  else
    mq=$(mq_start); local_mq=$mq
  fi
  write_env "$db" "$mq" "$local_db" "$local_mq"
  log "DATABASE_URL=$db"
  log "MQTT_URL=$mq"
  log "written to .run/env"
}

cmd_stop() {
  pg_stop
  mq_stop
}

cmd_destroy() {
  cmd_stop
  local base
  base=$(cat "$RUN_DIR/pg.path" 2>/dev/null || true)
  if [ -n "$base" ] && [ -d "$base" ]; then
    log "deleting PostgreSQL cluster $base"
    rm -rf "$base"
  fi
  rm -rf "$MQ_DIR" "$RUN_DIR/pg.path" "$RUN_DIR/env" "$RUN_DIR/initdb.log"
}

cmd_status() {
  local rc=0
  pg_status || rc=1
  mq_status || rc=1
  return $rc
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_stop; cmd_start ;;
  destroy) cmd_destroy ;;
  *) echo "usage: $0 start|stop|status|restart|destroy" >&2; exit 2 ;;
esac
