# SPDX-License-Identifier: AGPL-3.0-or-later
"""Camera analytics benchmark, issue 8, in one run on the same footage, pinned to ONE core.

    .venv/bin/python bench/camera.py                 # ~2 min
    .venv/bin/python bench/camera.py --loops 1       # quick look

By hand, not in CI. The real highway clip (``shared/data/video``,
320×240 MPEG-4) is scaled to 1280×720 and written once to a temporary
MPEG-4 file, so every stage reads the same 720p footage. The process is
pinned to one CPU (``sched_setaffinity``) and OpenCV/FFmpeg run one thread.

1. raw decode: every frame of the 720p file (the limit for "decoded");
2. raw background subtraction at full 720p: MOG2 + contours on every frame,
   timed around the analysis only (the limit for "analysed");
3. the whole pipeline — decode → motion on a 320-wide frame → track →
   count → lanes/congestion/zones → detection messages (in memory, or to
   the broker with ``--mqtt``) with snapshots — at the default 12.5 analysed
   frames/s for one camera, then four cameras in one process;
4. the same pipeline analysing every frame (25/s) for the counts to compare.

Goal: one core ≥ 100 decoded and ≥ 50 analysed frames/s with four cameras,
counts unchanged against full-rate analysis. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "threads;1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twin.settings")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import django  # noqa: E402

django.setup()

from cameras.publish import MemoryPublisher, MqttPublisher  # noqa: E402
from cameras.worker import CameraSpec, CameraWorker, run_cameras  # noqa: E402
from tests.cameras.support import HIGHWAY, fixture_config  # noqa: E402

W, H = 1280, 720


def make_720p(src: Path, dst: Path, loops: int) -> int:
    """The clip scaled to 1280×720, ``loops`` times over (longer runs, steadier figures)."""
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (W, H))
    frames = 0
    for _ in range(loops):
        cap = cv2.VideoCapture(str(src))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            writer.write(cv2.resize(frame, (W, H), interpolation=cv2.INTER_LINEAR))
            frames += 1
        cap.release()
    writer.release()
    return frames


def raw_decode(path: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(path))
    n, start = 0, time.perf_counter()
    while cap.read()[0]:
        n += 1
    return n, time.perf_counter() - start


def raw_mog2(path: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(path))
    mog = cv2.createBackgroundSubtractorMOG2(history=500, varThreshold=32, detectShadows=True)
    n, busy = 0, 0.0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        start = time.perf_counter()
        mask = mog.apply(frame)
        cv2.findContours(cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)[1], cv2.RETR_EXTERNAL,
                         cv2.CHAIN_APPROX_SIMPLE)
        busy += time.perf_counter() - start
        n += 1
    return n, busy


def pipeline(path: Path, cameras: int, fps: float, mqtt: str | None, snapshot_dir: str) -> dict:
    os.environ["CAMERA_SNAPSHOT_DIR"] = snapshot_dir
    publisher = MqttPublisher(mqtt, city="hue", root=f"bench{os.getpid()}") if mqtt else MemoryPublisher()
    cfg = fixture_config("cam-hungvuong-01")
    workers = [CameraWorker(CameraSpec(f"bench-{i}", str(path), cfg), publisher, analysis_fps=fps, realtime=False,
                            counts_interval_s=10) for i in range(cameras)]
    start = time.perf_counter()
    cpu0 = time.process_time()
    run_cameras(workers, threading.Event())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    publisher.close()
    return {"decoded": sum(w.source.decoded for w in workers), "analysed": sum(w.analysis.frames_analysed
                                                                               for w in workers),
            "wall": wall, "cpu": cpu, "messages": sum(w.published for w in workers),
            "counts": [w.analysis.lines.totals["right"] for w in workers]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops", type=int, default=2, help="Clip repeats in the 720p file (748 frames each).")
    parser.add_argument("--cpu", type=int, default=0, help="The one CPU to pin to.")
    parser.add_argument("--mqtt", help="Publish to this broker (default: in memory).")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    cv2.setNumThreads(1)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"OpenCV {cv2.__version__}, pinned to CPU {args.cpu}, {os.cpu_count()} CPUs on the machine")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "highway-720p.mp4"
        frames = make_720p(HIGHWAY, video, args.loops)
        rows = []
        n, secs = raw_decode(video)
        rows.append(("raw decode, 1280×720 MPEG-4", f"{n / secs:.0f} decoded/s", "", ""))
        n, secs = raw_mog2(video)
        rows.append(("raw MOG2 + contours at full 1280×720", f"{n / secs:.0f} analysed/s", "", ""))
        results = {}
        for cams, fps in ((1, 12.5), (4, 12.5), (1, 25.0)):
            r = results[(cams, fps)] = pipeline(video, cams, fps, args.mqtt, tmp)
            rows.append((f"pipeline, {cams} camera(s), analysis {fps:g}/s",
                         f"{r['decoded'] / r['wall']:.0f} decoded/s", f"{r['analysed'] / r['wall']:.0f} analysed/s",
                         f"counts {r['counts'][0]} · CPU {r['cpu'] / r['wall'] * 100:.0f} % · {r['messages']} msgs"))
    print(f"\n{frames} frames of 720p footage per pass\n")
    print("| stage | decoded | analysed | notes |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    four, full = results[(4, 12.5)], results[(1, 25.0)]
    dec, ana = four["decoded"] / four["wall"], four["analysed"] / four["wall"]
    same = all(c == full["counts"][0] for c in four["counts"])
    half_vs_full = results[(1, 12.5)]["counts"][0] == full["counts"][0]
    print(f"\ngoal ≥ 100 decoded/s and ≥ 50 analysed/s on one core (4 cameras): {dec:.0f} / {ana:.0f} → "
          f"{'PASS' if dec >= 100 and ana >= 50 else 'FAIL'}")
    print(f"counts at 12.5/s vs full rate: {results[(1, 12.5)]['counts'][0]} vs {full['counts'][0]} → "
          f"{'same' if half_vs_full else 'DIFFERENT'}; four cameras agree with full rate: {same}")
    return 0 if dec >= 100 and ana >= 50 else 1


if __name__ == "__main__":
    sys.exit(main())
