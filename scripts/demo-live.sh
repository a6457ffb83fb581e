#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The live part of `make demo`: the MQTT ingestion worker, the offline timers and
# the device simulator run in the background (logs in .run/demo-*.log) while the
# web server runs in the foreground; stopping the server stops them too.
set -euo pipefail
LOG_TAG=demo
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_run_dir
twin="$ROOT/.venv/bin/twin"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

"$twin" simulate --register-only >"$RUN_DIR/demo-simulate.log" 2>&1
# Citizen reports: the real 311 sample placed on Huế wards (skipped when already loaded), so the
# KPI and public pages show a realistic volume; then the overdue check every 5 minutes (docs/reports.md).
"$twin" load-reports >"$RUN_DIR/demo-reports.log" 2>&1
"$twin" check-overdue --interval 300 >>"$RUN_DIR/demo-reports.log" 2>&1 & pids+=($!)
# Photo files of filings that never committed, once a day old (reports/services/media_store.py).
"$twin" prune-report-media --interval 3600 >>"$RUN_DIR/demo-reports.log" 2>&1 & pids+=($!)
"$twin" run-ingest >"$RUN_DIR/demo-ingest.log" 2>&1 & pids+=($!)
# Camera analytics on the real footage, placed on Huế roads (fixtures/cameras/hue.toml, docs/cameras.md).
"$twin" camera load >"$RUN_DIR/demo-camera.log" 2>&1
"$twin" camera run cam-hungvuong-01 cam-leduan-01 --loop >>"$RUN_DIR/demo-camera.log" 2>&1 & pids+=($!)
"$twin" check-offline --interval 60 >"$RUN_DIR/demo-offline.log" 2>&1 & pids+=($!)
"$twin" simulate --no-register --wait-for-ingest 60 --rate "${DEMO_SIM_RATE:-20}" >>"$RUN_DIR/demo-simulate.log" 2>&1 & pids+=($!)
log "live: ingestion worker, offline timers, simulator, camera analytics and the report deadline check running (logs: .run/demo-*.log)"
# --noreload: a demo serves; the file watcher would poll every source file each second.
"$twin" runserver --noreload "${DEMO_ADDR:-127.0.0.1:8000}"
