# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin camera load|run``: place the city's cameras, run the analytics worker.

``twin camera load [--file fixtures/cameras/hue.toml]`` writes the camera
layer and its field-of-view layer. ``twin camera run CAMERA [CAMERA …]``
analyses those cameras in this process (one process per core) and
publishes on MQTT; see docs/cameras.md.
"""
from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from pydantic import ValidationError

from cameras.config import CameraConfig
from cameras.load import load_cameras
from cameras.publish import MqttPublisher
from cameras.worker import CameraSpec, CameraWorker, run_cameras
from twin.errors import InvalidInput
from twin.models import Feature

logger = logging.getLogger(__name__)


def camera_spec(external_id: str, *, city: str | None, source: str | None) -> tuple[CameraSpec, str]:
    """The camera's stream and validated configuration, read from its feature."""
    rows = Feature.objects.filter(layer__kind="camera", external_id=external_id).select_related("layer__city")
    if city:
        rows = rows.filter(layer__city__slug=city)
    found = list(rows[:2])
    if len(found) != 1:
        raise CommandError(f"camera {external_id!r}: {'no such camera' if not found else 'ambiguous, give --city'}")
    feature = found[0]
    url = source or feature.properties.get("stream_url")
    if not url:
        raise CommandError(f"camera {external_id!r} has no stream_url; give --source")
    try:
        cfg = CameraConfig.model_validate(feature.properties.get("config") or {})
    except ValidationError as exc:
        raise CommandError(f"camera {external_id!r}: invalid config: {exc}") from None
    return CameraSpec(external_id, url, cfg), feature.layer.city.slug if feature.layer.city else (city or "")


class Command(BaseCommand):
    help = "Camera analytics: load the city's cameras, or run the analytics worker on some of them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["load", "run"])
        parser.add_argument("cameras", nargs="*", help="run: camera ids (external ids).")
        parser.add_argument("--file", help="load: cameras TOML (default fixtures/cameras/<DEFAULT_CITY>.toml).")
        parser.add_argument("--city", help="run: city slug, when an id is used in several cities.")
        parser.add_argument("--source", help="run: override the stream URL (one camera only).")
        parser.add_argument("--analysis-fps", type=float, help="run: frames analysed per second (default 12.5).")
        parser.add_argument("--loop", action="store_true", help="run: play files again at their end (demo).")
        parser.add_argument("--fast", action="store_true", help="run: read files as fast as possible.")
        parser.add_argument("--max-seconds", type=float, help="run: stop after this long.")
        parser.add_argument("--counts-interval", type=float, default=10.0, help="run: seconds between counts.")
        parser.add_argument("--mqtt-url", help="run: broker (default MQTT_URL).")
        parser.add_argument("--topic-root", default="city", help="run: first topic level (default city).")

    def handle(self, *args, action: str, cameras: list[str], **options) -> None:
        if action == "load":
            try:
                for layer, summary in load_cameras(options["file"]).items():
                    self.stdout.write(summary)
            except InvalidInput as exc:
                raise CommandError(str(exc)) from None
            return
        if not cameras:
            raise CommandError("run needs at least one camera id")
        if options["source"] and len(cameras) > 1:
            raise CommandError("--source applies to one camera only")
        self._run(cameras, options)

    def _run(self, cameras: list[str], options) -> None:
        specs = [camera_spec(c, city=options["city"], source=options["source"]) for c in cameras]
        cities = {city for _, city in specs}
        if len(cities) != 1:
            raise CommandError("run cameras of one city per process")
        url = options["mqtt_url"] or settings.MQTT_URL
        publisher = MqttPublisher(url, city=cities.pop(), root=options["topic_root"])
        workers = [CameraWorker(spec, publisher, counts_interval_s=options["counts_interval"],
                                analysis_fps=options["analysis_fps"], loop=options["loop"] or None,
                                realtime=False if options["fast"] else None) for spec, _ in specs]
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"analysing {', '.join(cameras)}; Ctrl-C to stop")
        try:
            run_cameras(workers, stop, max_seconds=options["max_seconds"])
        finally:
            publisher.close()
        for w in workers:
            self.stdout.write(f"{w.spec.id}: {w.source.decoded} frames decoded, {w.analysis.frames_analysed} analysed, "
                              f"{w.published} messages, counts {w.analysis.lines.totals}, "
                              f"{w.source.corrupt} corrupt, {w.source.reconnects} reconnects")
