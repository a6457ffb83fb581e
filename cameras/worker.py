# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin camera run``: several cameras per process, each a source → analysis → messages.

One thread per camera reads and decodes (:mod:`cameras.source`); the
process's main loop visits the cameras in turn, analyses the frames that
are due and publishes what happened as ``detection`` lifecycles and
periodic ``counts`` (:mod:`cameras.publish`). Run one process per core.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from cameras import plates
from cameras.analysis import CameraAnalysis, FrameResult
from cameras.config import CameraConfig
from cameras.plates import WatchList, read_plates
from cameras.publish import Publisher, iso_utc
from cameras.snapshot import write_snapshot
from cameras.source import DEGRADED, ENDED, OFFLINE, ONLINE, SourceSettings, VideoSource, is_file
from cameras.track import Track

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraSpec:
    id: str
    url: str
    config: CameraConfig


class CameraWorker:
    def __init__(self, spec: CameraSpec, publisher: Publisher, *, counts_interval_s: float = 10.0,
                 analysis_fps: float | None = None, realtime: bool | None = None, loop: bool | None = None) -> None:
        a = spec.config.analytics
        self.spec, self.publisher, self.counts_interval_s = spec, publisher, counts_interval_s
        self.analysis_fps = analysis_fps
        self.source = VideoSource(spec.url, SourceSettings(
            stall_timeout_s=a.stall_timeout_s, offline_after_s=a.offline_after_s, reconnect_min_s=a.reconnect_min_s,
            reconnect_max_s=a.reconnect_max_s, realtime=a.realtime if realtime is None else realtime,
            loop=a.loop if loop is None else loop))
        self.analysis = CameraAnalysis(spec.config, analysis_fps=analysis_fps)
        self.health, self._generation, self._last_obs = DEGRADED, 0, datetime.min.replace(tzinfo=timezone.utc)
        self._anchor: tuple[float, datetime] | None = None
        self._next_counts = time.monotonic() + counts_interval_s
        self._frame: np.ndarray | None = None
        self._watch = WatchList(spec.config.plates.watch_list)
        if spec.config.plates.enabled and not plates.READERS:
            logger.warning("%s: plates enabled but no plate reader is installed (rapidocr-onnxruntime, see "
                           "scripts/deps.sh): plate regions are found, never read, no watch-list events", spec.id)
        self.published = 0
        self.plate_reads, self.plate_ms = 0, 0.0       # reads of vehicle crops and their total time (docs/cameras.md)

    # -- time -------------------------------------------------------------------------------------
    def _wall(self, t: float) -> datetime:
        """Stream seconds → wall-clock time (files play "now"; live streams already are)."""
        if not is_file(self.spec.url):
            return datetime.fromtimestamp(t, timezone.utc)
        if self._anchor is None:
            self._anchor = (t, datetime.now(timezone.utc))
        return self._anchor[1] + timedelta(seconds=t - self._anchor[0])

    def _stamp(self, moment: datetime) -> str:
        # Observations are unique per (camera, time): messages of one frame are 1 µs apart.
        if moment <= self._last_obs:
            moment = self._last_obs + timedelta(microseconds=1)
        self._last_obs = moment
        return iso_utc(moment)

    # -- loop -------------------------------------------------------------------------------------
    def start(self) -> CameraWorker:
        if self.spec.config.plates.enabled:            # load OCR models now, not in the middle of the frame loop
            for reader in plates.READERS.values():
                getattr(reader, "warm", lambda: None)()
        self.source.start()
        return self

    def stop(self) -> None:
        self.source.stop()
        self._emit(self.analysis.finish(time.time() if not is_file(self.spec.url) else self._last_t()))
        self._publish_counts()

    def _last_t(self) -> float:
        return getattr(self, "_t", 0.0)

    def step(self) -> bool:
        """Analyse the newest frame if one is due; publish health and counts. True if it did work."""
        item = self.source.get()
        self._check_health()
        if time.monotonic() >= self._next_counts:
            self._publish_counts()
        if item is None:
            return False
        frame, t = item
        if self.source.generation != self._generation:
            if self._generation:
                self._emit(self.analysis.finish(self._last_t()))
                self.analysis.reset()
            self._generation = self.source.generation
        self._t, self._frame = t, frame
        result = self.analysis.offer(frame, t)
        if result is not None:
            self._emit(result)
        return True

    @property
    def done(self) -> bool:
        return self.source.health == ENDED and not self.source.pending

    def _check_health(self) -> None:
        health = self.source.health
        if health == self.health or health == ENDED:
            return
        previous, self.health = self.health, health
        now = datetime.now(timezone.utc)
        key = f"{self.spec.id}-stream"
        if health in (DEGRADED, OFFLINE) and previous == ONLINE:
            self._stream_alert("new", key, now, health)
        elif health == OFFLINE:
            self._stream_alert("update", key, now, health)
        elif health == ONLINE and previous in (DEGRADED, OFFLINE) and self._generation:
            self._stream_alert("end", key, now, health)
        self._publish_status(health, now)
        logger.warning("camera %s: %s → %s", self.spec.id, previous, health)

    def _publish_status(self, health: str, now: datetime) -> None:
        """The camera feature's own status (Device ``deviceState``): ``active`` or ``degraded``.

        Offline is not said: the worker goes silent and the platform's offline
        timer marks the camera offline, as for any device that stops talking.
        """
        state = {ONLINE: "active", DEGRADED: "degraded"}.get(health)
        if state is not None:
            self.publisher.publish(self.spec.id, "status", {"dateLastValueReported": self._stamp(now),
                                                             "deviceState": state})

    def _stream_alert(self, kind: str, key: str, now: datetime, health: str) -> None:
        self._send(kind, {"id": key, "label": "camera", "category": "camera_stream",
                          "severity": 3 if health == OFFLINE else 2, "start_time": iso_utc(now),
                          "end_time": iso_utc(now) if kind == "end" else None,
                          "detail": {"state": health, "reconnects": self.source.reconnects}}, now)

    # -- messages ---------------------------------------------------------------------------------
    def _object(self, track: Track, *, end: bool = False) -> dict[str, Any]:
        obj = {"id": f"{self.spec.id}-{self._generation}-{track.id}", "label": track.label,
               "score": round(min(1.0, track.score), 3), "box": [round(v, 1) for v in track.box],
               "start_time": iso_utc(self._wall(track.first_t))}
        mapping = self.analysis.mapping
        if mapping is not None:
            lon, lat = mapping.to_lonlat([track.foot])[0]
            obj["ground"] = {"type": "Point", "coordinates": [round(float(lon), 7), round(float(lat), 7)]}
        if end:
            obj["end_time"] = iso_utc(self._wall(track.last_t))
        if track.data.get("snapshot"):
            obj["snapshot"] = track.data["snapshot"]     # every message of the object points at its picture
        return obj

    def _snapshot(self, obj: dict[str, Any], keep) -> None:
        if not self.spec.config.analytics.snapshots or self._frame is None:
            return
        others = [tr.box for tr in self.analysis.tracker.tracks]
        if self.spec.config.frame_size:     # boxes are in the configured frame's pixels
            height, width = self._frame.shape[:2]
            sx, sy = width / self.spec.config.frame_size[0], height / self.spec.config.frame_size[1]
            scale = lambda b: (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)   # noqa: E731
            keep, others = (scale(keep) if keep else None), [scale(b) for b in others]
        try:
            obj["snapshot"] = write_snapshot(self._frame, self.spec.id, obj["id"], keep, others,
                                             mode=self.spec.config.analytics.snapshot_privacy)
        except OSError as exc:
            logger.warning("snapshot for %s failed: %s", obj["id"], exc)

    def _emit(self, result: FrameResult) -> None:
        when = self._wall(result.t)
        interval = self.spec.config.analytics.update_interval_s
        for track in result.started:
            obj = self._object(track)
            self._snapshot(obj, track.box)
            track.data["snapshot"] = obj.get("snapshot")
            track.data["last_update"] = result.t
            self._send("new", obj, when)
        for track in result.tracks:
            if self.spec.config.plates.enabled:
                self._plates(track, result.t, when)
            if track not in result.started and result.t - track.data.get("last_update", result.t) >= interval:
                track.data["last_update"] = result.t
                self._send("update", self._object(track), when)
        for track in result.ended:
            self._send("end", self._object(track, end=True), when)
            if track.data.get("plate_alert"):       # the watch-list alert ends with its vehicle's track
                alert = track.data["plate_alert"]
                keep = {k: alert[k] for k in ("id", "category", "plate", "detail", "snapshot") if k in alert}
                self._send("end", {**self._object(track, end=True), **keep}, when)
        for v in result.violations:
            self._violation(v, when)
        if result.congestion is not None:
            c = result.congestion
            obj = {"id": f"{self.spec.id}-congestion-{int(c.since)}", "label": "congestion",
                   "category": "congestion", "severity": 2 + c.peak, "start_time": iso_utc(self._wall(c.since)),
                   "detail": {"level": c.level, "peak": c.peak, "lanes": self.analysis.lanes.snapshot()}}
            if c.state == "end":
                obj["end_time"] = iso_utc(when)
            else:
                self._snapshot(obj, None)
            self._send({"start": "new"}.get(c.state, c.state), obj, when)

    def _crop(self, box) -> np.ndarray | None:
        if self._frame is None:
            return None
        height, width = self._frame.shape[:2]
        sx, sy = (width / self.spec.config.frame_size[0], height / self.spec.config.frame_size[1]) \
            if self.spec.config.frame_size else (1.0, 1.0)
        x, y, w, h = box
        crop = self._frame[max(0, int(y * sy)):int((y + h) * sy), max(0, int(x * sx)):int((x + w) * sx)]
        return crop if crop.size else None

    def _plates(self, track: Track, t: float, when: datetime) -> None:
        """Read a vehicle's plate a few times over its track (not every frame); a watch-listed plate is an alert.

        Reads stop at the first valid plate or after ``plates.max_reads``, ``plates.read_interval_s`` apart:
        a read costs tens of milliseconds and the worker analyses four cameras per core.
        """
        cfg, data = self.spec.config.plates, track.data
        if data.get("plate") or data.get("plate_reads", 0) >= cfg.max_reads \
                or t - data.get("plate_t", float("-inf")) < cfg.read_interval_s:
            return
        crop = self._crop(track.box)
        if crop is None or crop.shape[1] < cfg.min_vehicle_px:
            return
        started = time.perf_counter()
        found = read_plates(crop, self._watch)
        elapsed = (time.perf_counter() - started) * 1000
        self.plate_reads, self.plate_ms = self.plate_reads + 1, self.plate_ms + elapsed
        data["plate_reads"], data["plate_t"], data["plates"] = data.get("plate_reads", 0) + 1, t, found
        hit = next((f for f in found if f["valid"]), None)
        if hit is None:
            return
        data["plate"] = hit["text"]
        if hit["watch_list"]:
            obj = {**self._object(track), "id": f"{self.spec.id}-{self._generation}-{track.id}-plate",
                   "category": "plate_watchlist", "plate": hit["text"], "detail": {"plate_box": hit["box"]}}
            self._snapshot(obj, track.box)
            track.data["plate_alert"] = obj
            self._send("new", obj, when)

    def _violation(self, v, when: datetime) -> None:
        track = next((tr for tr in self.analysis.tracker.tracks if tr.id == v.track_id), None)
        obj = {"id": f"{self.spec.id}-{self._generation}-{v.track_id}-{v.zone}", "label": v.label,
               "category": v.rule, "zone": v.zone, "start_time": iso_utc(self._wall(v.since)), "detail": v.detail}
        if track is not None:
            obj.update({k: val for k, val in self._object(track).items() if k in ("box", "ground")})
        if v.state == "start":
            self._snapshot(obj, track.box if track else None)
            self._send("new", obj, when)
        else:
            obj["end_time"] = iso_utc(when)
            self._send("end", obj, when)

    def _send(self, kind: str, after: dict[str, Any], when: datetime) -> None:
        after = {k: v for k, v in after.items() if v is not None}
        payload = {"type": kind, "dateObserved": self._stamp(when), "after": after}
        if "ground" in after:
            payload["location"] = after["ground"]
        self.publisher.publish(self.spec.id, "detection", payload)
        self.published += 1

    def _publish_counts(self) -> None:
        self._next_counts = time.monotonic() + self.counts_interval_s
        if self.source.health == OFFLINE:
            return   # silence: the platform's offline timer marks the camera offline
        payload = {"dateObserved": self._stamp(datetime.now(timezone.utc)), "lines": self.analysis.lines.totals,
                   "lanes": self.analysis.lanes.snapshot(), "congestionLevel": self.analysis.congestion.level,
                   "streamState": self.source.health, "framesDecoded": self.source.decoded,
                   "framesAnalysed": self.analysis.frames_analysed, "corruptFrames": self.source.corrupt,
                   "reconnects": self.source.reconnects}
        self.publisher.publish(self.spec.id, "counts", payload)


def run_cameras(workers: list[CameraWorker], stop: threading.Event, *, max_seconds: float | None = None) -> None:
    """Visit every camera in turn until ``stop`` (or every file ended, or ``max_seconds``)."""
    started = time.monotonic()
    frame_ready = threading.Event()      # any camera's reader sets it: no polling delay between frames
    for worker in workers:
        worker.source.notify = frame_ready
        worker.start()
    try:
        while not stop.is_set():
            frame_ready.clear()
            busy = False
            for worker in workers:
                try:
                    busy |= worker.step()
                except Exception:   # one camera's bug must not stop the others
                    logger.exception("camera %s failed on a frame; carrying on", worker.spec.id)
            if all(w.done for w in workers) or (max_seconds and time.monotonic() - started > max_seconds):
                break
            if not busy:
                frame_ready.wait(0.05)
    finally:
        for worker in workers:
            worker.stop()


__all__ = ["CameraSpec", "CameraWorker", "run_cameras"]
