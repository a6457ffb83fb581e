# SPDX-License-Identifier: AGPL-3.0-or-later
"""The worker on broken input: truncated and corrupted files, a source that never opens, a stream that stalls."""
from __future__ import annotations

import http.server
import socketserver
import threading
import time
from pathlib import Path

import numpy as np

from cameras.publish import MemoryPublisher
from cameras.source import DEGRADED, OFFLINE
from cameras.worker import CameraSpec, CameraWorker, run_cameras
from tests.cameras.support import HIGHWAY, fixture_config, require_video

FAST = {"stall_timeout_s": 1.0, "offline_after_s": 2.5, "reconnect_min_s": 0.2, "reconnect_max_s": 0.8}


def worker_for(url: str, publisher: MemoryPublisher, **analytics) -> CameraWorker:
    cfg = fixture_config("cam-hungvuong-01", snapshots=False, **analytics)
    return CameraWorker(CameraSpec("cam-test", url, cfg), publisher, counts_interval_s=0.5, realtime=False)


def run(worker: CameraWorker, seconds: float) -> None:
    run_cameras([worker], threading.Event(), max_seconds=seconds)


def detections(publisher: MemoryPublisher) -> list[dict]:
    return [p for _, stream, p in publisher.messages if stream == "detection"]


def test_a_truncated_file_is_analysed_up_to_where_it_breaks_and_the_worker_ends_cleanly(tmp_path: Path):
    data = require_video(HIGHWAY).read_bytes()
    broken = tmp_path / "truncated.avi"
    broken.write_bytes(data[: len(data) * 6 // 10])
    publisher = MemoryPublisher()
    worker = worker_for(str(broken), publisher)
    run(worker, 60)
    assert 200 < worker.source.decoded < 748
    assert worker.analysis.lines.totals["right"]["away"] >= 5
    kinds = [p["type"] for p in detections(publisher)]
    assert kinds.count("new") == kinds.count("end")           # every started object was ended


def test_corrupt_bytes_in_the_middle_never_crash_the_worker(tmp_path: Path):
    data = bytearray(require_video(HIGHWAY).read_bytes())
    rng = np.random.default_rng(1)
    for start in (200_000, 450_000, 700_000):
        data[start:start + 20_000] = rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    broken = tmp_path / "corrupt.avi"
    broken.write_bytes(bytes(data))
    publisher = MemoryPublisher()
    worker = worker_for(str(broken), publisher)
    run(worker, 60)
    assert worker.source.decoded > 400
    assert worker.analysis.frames_analysed > 150
    assert any(stream == "counts" for _, stream, _ in publisher.messages)


def test_a_source_that_never_opens_is_retried_with_back_off_and_goes_degraded_then_offline(tmp_path: Path):
    garbage = tmp_path / "not-a-video.avi"
    garbage.write_bytes(b"this is not a video" * 100)
    publisher = MemoryPublisher()
    worker = worker_for(str(garbage), publisher, **FAST)
    states = []
    worker.source.start()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        worker.step()
        states.append(worker.health)
        time.sleep(0.05)
    worker.source.stop()
    assert DEGRADED in states and states[-1] == OFFLINE
    # Never opened: its status never says active, and nothing claims offline (silence does).
    assert {p["deviceState"] for _, stream, p in publisher.messages if stream == "status"} <= {"degraded"}
    # Silence while offline: the platform's offline timer takes over (no counts are published).
    counts = [p for _, stream, p in publisher.messages if stream == "counts"]
    assert all(c["streamState"] != OFFLINE for c in counts)


class StallingServer:
    """Serves the real video over HTTP, but only its first 400 kB, then hangs: a stalled stream."""

    def __init__(self, data: bytes) -> None:
        self.connections = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "video/x-msvideo")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:400_000])
                self.wfile.flush()
                time.sleep(4)

            def log_message(self, *args) -> None:
                pass

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/highway.avi"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_stalled_http_stream_marks_the_camera_degraded_and_reconnects():
    server = StallingServer(require_video(HIGHWAY).read_bytes())
    publisher = MemoryPublisher()
    worker = worker_for(server.url, publisher, stall_timeout_s=1.0, offline_after_s=30, reconnect_min_s=0.2)
    try:
        run(worker, 8)
    finally:
        server.close()
    assert worker.source.decoded >= 250            # what arrived before each stall was analysed
    assert worker.source.reconnects >= 1 and server.connections >= 2
    stream_alerts = [p for p in detections(publisher) if p["after"].get("category") == "camera_stream"]
    assert stream_alerts and stream_alerts[0]["type"] == "new"
    assert stream_alerts[0]["after"]["detail"]["state"] == DEGRADED
    # The camera feature's own status follows: active while frames flow, degraded when they stall.
    states = [p["deviceState"] for _, stream, p in publisher.messages if stream == "status"]
    assert states[:2] == ["active", "degraded"] and "active" in states[2:]


def test_detection_messages_follow_a_new_update_end_lifecycle_with_ground_positions():
    publisher = MemoryPublisher()
    worker = worker_for(str(require_video(HIGHWAY)), publisher, update_interval_s=0.5)
    run(worker, 60)
    by_id: dict[str, list[str]] = {}
    for p in detections(publisher):
        by_id.setdefault(p["after"]["id"], []).append(p["type"])
        if "ground" in p["after"]:
            lon, lat = p["after"]["ground"]["coordinates"]
            assert 107.59 < lon < 107.60 and 16.45 < lat < 16.47     # on Hùng Vương, not somewhere else
    assert len(by_id) >= 20
    for lifecycle in by_id.values():
        assert lifecycle[0] == "new" and lifecycle[-1] == "end" and set(lifecycle[1:-1]) <= {"update"}
    assert any("update" in lc for lc in by_id.values())
    times = [p["dateObserved"] for p in detections(publisher)]
    assert len(times) == len(set(times))           # one observation per (camera, time)


def test_a_looped_file_keeps_playing_with_fresh_object_ids_and_counts_adding_up():
    from tests.cameras.support import CAR_PARK

    publisher = MemoryPublisher()
    cfg = fixture_config("cam-leduan-01", snapshots=False)
    worker = CameraWorker(CameraSpec("loop", str(require_video(CAR_PARK)), cfg), publisher, realtime=False, loop=True)
    run_cameras([worker], threading.Event(), max_seconds=6)
    loops = worker.source.generation
    assert loops >= 2 and worker.source.reconnects == 0
    totals = worker.analysis.lines.totals["aisle"]
    assert 2 * (loops - 1) <= totals["up"] <= 2 * loops and 2 * (loops - 1) <= totals["down"] <= 2 * loops
    times = [p["dateObserved"] for _, stream, p in publisher.messages if stream != "status"]
    assert times == sorted(times)                  # stream time keeps going forward across loops
