# SPDX-License-Identifier: AGPL-3.0-or-later
"""Video sources: anything OpenCV opens (file, RTSP, HTTP), read in a thread, with reconnects.

A reader thread decodes every frame into a one-slot mailbox (a live camera
never waits for the analysis: the newest frame wins, and the number of
frames dropped is counted). The consumer sees the source's *health*:

- ``online``   frames arrive;
- ``degraded`` no frame for ``stall_timeout_s``, or the stream dropped and is
  being reopened with exponential back-off (``reconnect_min_s`` doubling up to
  ``reconnect_max_s``);
- ``offline``  nothing readable for ``offline_after_s``;
- ``ended``    a file reached its end (and ``loop`` is off).

A file read with ``realtime`` off waits for the consumer instead of dropping frames.

A frame OpenCV cannot decode is skipped by the decoder itself (FFmpeg
conceals or drops it); a frame that arrives empty or of the wrong shape is
counted in ``corrupt`` and skipped, never passed on.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

ONLINE, DEGRADED, OFFLINE, ENDED = "online", "degraded", "offline", "ended"


@dataclass(frozen=True, slots=True)
class SourceSettings:
    stall_timeout_s: float = 5.0
    offline_after_s: float = 30.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    realtime: bool = True
    loop: bool = False


def open_capture(url: str, read_timeout_s: float) -> cv2.VideoCapture:
    """Open ``url`` (``file://`` paths too) with FFmpeg open/read time-outs where supported."""
    target = url[len("file://"):] if url.startswith("file://") else url
    if "://" not in target:
        return cv2.VideoCapture(str(Path(target)))
    ms = int(read_timeout_s * 1000)
    return cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])


def is_file(url: str) -> bool:
    return url.startswith("file://") or "://" not in url


class VideoSource:
    """A reconnecting reader. ``get()`` returns ``(frame, t)`` or ``None`` when no new frame is in."""

    def __init__(self, url: str, settings: SourceSettings, *,
                 opener: Callable[[str, float], cv2.VideoCapture] = open_capture) -> None:
        self.url = url
        self.settings = settings
        self._opener = opener
        self._lock = threading.Lock()
        self._frame: tuple[np.ndarray, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.health = DEGRADED
        self.last_frame_at = time.monotonic()
        self.decoded = self.dropped = self.corrupt = self.reconnects = 0
        self.generation = 0     # bumped on every (re)open: the analysis resets its background
        self.fps = 25.0
        self.looped = False
        self.notify: threading.Event | None = None     # set on every frame (the worker's loop waits on it)
        self._clock = 0.0
        self._taken = threading.Condition(self._lock)

    def start(self) -> VideoSource:
        self._thread = threading.Thread(target=self._run, name=f"source:{self.url[-40:]}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    @property
    def pending(self) -> bool:
        """A frame is waiting to be taken."""
        return self._frame is not None

    def get(self) -> tuple[np.ndarray, float] | None:
        with self._lock:
            item, self._frame = self._frame, None
            self._taken.notify_all()
        self._update_health()
        return item

    def _update_health(self) -> None:
        if self.health == ENDED:
            return
        silent = time.monotonic() - self.last_frame_at
        if silent >= self.settings.offline_after_s:
            self.health = OFFLINE
        elif silent >= self.settings.stall_timeout_s:
            self.health = DEGRADED if self.health != OFFLINE or silent < self.settings.offline_after_s else OFFLINE

    def _run(self) -> None:
        delay = self.settings.reconnect_min_s
        while not self._stop.is_set():
            capture = self._opener(self.url, self.settings.stall_timeout_s)
            if capture is None or not capture.isOpened():
                logger.warning("cannot open %s; retrying in %.1f s", self.url, delay)
                self._degrade()
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.reconnect_max_s)
                continue
            self.generation += 1
            self.fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
            got_any = self._pump(capture)
            capture.release()
            if self._stop.is_set():
                return
            if self.health == ENDED:
                return
            if self.looped:
                self.looped = False
                continue
            if got_any:
                delay = self.settings.reconnect_min_s
            self.reconnects += 1
            self._degrade()
            logger.warning("stream %s dropped or stalled; reconnecting in %.1f s", self.url, delay)
            self._stop.wait(delay)
            delay = min(delay * 2, self.settings.reconnect_max_s)

    def _degrade(self) -> None:
        if self.health not in (OFFLINE, ENDED):
            self.health = DEGRADED
        self._update_health()

    def _pump(self, capture: cv2.VideoCapture) -> bool:
        """Read until the stream ends, fails or stalls; True if any frame came."""
        file_source = is_file(self.url)
        period = 1.0 / self.fps if self.fps > 0 else 0.04
        started, index, got_any, shape = time.monotonic(), 0, False, None
        while not self._stop.is_set():
            before = time.monotonic()
            try:
                ok, frame = capture.read()
            except cv2.error as exc:           # a broken packet must never end the worker
                logger.warning("decode error on %s: %s", self.url, exc)
                self.corrupt += 1
                ok, frame = True, None
            if not ok:
                if file_source and got_any:
                    self._clock += index * period    # a looped file's time keeps going forward
                    self.health = ENDED if not self.settings.loop else self.health
                    self.looped = self.settings.loop
                return got_any
            if time.monotonic() - before > self.settings.stall_timeout_s:
                logger.warning("stream %s stalled %.1f s", self.url, time.monotonic() - before)
            if frame is None or frame.size == 0 or frame.ndim != 3 or (shape and frame.shape != shape):
                self.corrupt += 1
                continue
            shape, got_any = frame.shape, True
            t = self._clock + index * period if file_source else time.time()
            self._deliver(frame, t)
            index += 1
            if file_source and self.settings.realtime:
                ahead = started + index * period - time.monotonic()
                if ahead > 0:
                    self._stop.wait(ahead)
        return got_any

    def _deliver(self, frame: np.ndarray, t: float) -> None:
        with self._lock:
            if self._frame is not None and is_file(self.url) and not self.settings.realtime:
                # A file read as fast as possible waits for the analysis instead of dropping frames.
                while self._frame is not None and not self._stop.is_set():
                    self._taken.wait(0.1)
            if self._frame is not None:
                self.dropped += 1
            self._frame = (frame, t)
        if self.notify is not None:
            self.notify.set()
        self.decoded += 1
        self.last_frame_at = time.monotonic()
        self.health = ONLINE


__all__ = ["DEGRADED", "ENDED", "OFFLINE", "ONLINE", "SourceSettings", "VideoSource", "open_capture"]
