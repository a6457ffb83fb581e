# SPDX-License-Identifier: AGPL-3.0-or-later
"""Shared helpers and fixtures for the MQTT ingestion tests (imported by the test modules).

Integration tests talk to the real Mosquitto at ``settings.MQTT_URL`` (the
project-local broker in CI) and the real PostGIS; they FAIL when the broker
is unreachable, never skip. Each test uses its own topic root, client ids
and shared group, so parallel runs on one broker never see each other.

Workers run in threads with their own database connections, so test data
must be *committed*. The test itself runs inside pytest-django's rolled-back
transaction (``pytestmark = pytest.mark.django_db``, which also makes
pytest-django create the test database) and only *reads* there: in READ
COMMITTED it sees what the workers commit. Everything that must be
committed (devices, replays, clean-up) runs through :func:`in_thread`, on a
connection of its own.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from django.conf import settings
from django.db import connection, connections
from shapely.geometry import Point

from ingestion.config import IngestConfig, load_config
from ingestion.models import DeadLetter, RuleState
from ingestion.worker import IngestWorker
from twin.models import City, Feature, GeoEvent, Layer
from twin.services import FeatureRow, LayerSpec, ensure_layer, ensure_partitions, write_features

WAIT_S = 60.0  # generous: CI machines are 2 shared cores; polls return as soon as the condition holds
NGO_MON = (107.5786, 16.4679)


def wait_for(condition: Callable[[], object], timeout: float = WAIT_S, what: str = "condition") -> object:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last value: {value!r})")
        time.sleep(0.05)


def in_thread(fn: Callable[..., object], *args, **kwargs) -> object:
    """Run ``fn`` on its own thread and database connection (autocommit): its writes are committed."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name="test-commit")
    thread.start()
    thread.join(120)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not finish in 120 s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")


def broker_address(url: str | None = None) -> tuple[str, int]:
    parts = urlsplit(url or settings.MQTT_URL)
    return parts.hostname or "127.0.0.1", parts.port or 1883


def require_broker(url: str | None = None) -> tuple[str, int]:
    """The broker's address; fails (never skips) when nothing listens there."""
    host, port = broker_address(url)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"MQTT broker {host}:{port} (MQTT_URL) is unreachable: {exc}. Run `make services`.")
    return host, port


def unique_root() -> str:
    return f"t{uuid.uuid4().hex[:12]}/city"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def air(moment: datetime, pm25: float = 12.5, **extra) -> dict:
    return {"type": "AirQualityObserved", "dateObserved": iso(moment), "pm25": pm25, **extra}


def base_time() -> datetime:
    """A recent whole second: readings at base_time() + n ms are unique and inside the accepted window."""
    return (datetime.now(timezone.utc) - timedelta(minutes=30)).replace(microsecond=0)


@dataclass
class Devices:
    """Registered devices of one test, in Huế: sensors ``s0``…, a boat ``b0``, a camera ``c0``."""

    root: str
    layers: list[Layer] = field(default_factory=list)
    ids: dict[tuple[str, str], int] = field(default_factory=dict)

    def sensor(self, n: int = 0) -> int:
        return self.ids[("sensor", f"s{n}")]

    def topic(self, kind: str, device_id: str, stream: str, city: str = "hue") -> str:
        return f"{self.root}/{city}/{kind}/{device_id}/{stream}"

    def feature_ids(self) -> list[int]:
        return list(self.ids.values())

    def observations(self) -> list[tuple[int, datetime]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT feature_id, time FROM twin_observation WHERE feature_id = ANY(%s)",
                           [self.feature_ids()])
            return cursor.fetchall()

    def dead_letters(self):
        return DeadLetter.objects.filter(topic__startswith=self.root + "/")

    def add(self, kind: str, external_id: str, lon: float, lat: float, properties: dict) -> int:
        layer = next((la for la in self.layers if la.kind == kind), None)
        if layer is None:
            slug = f"mq-{kind}-{uuid.uuid4().hex[:10]}"
            layer = ensure_layer(LayerSpec(slug=slug, title_vi=f"Thử {kind}", kind=kind, geometry_type="Point"),
                                 city=City.objects.get(slug="hue"))
            self.layers.append(layer)
        write_features(layer, [FeatureRow(external_id=external_id, geom=Point(lon, lat), properties=properties)])
        feature_id = Feature.objects.get(layer=layer, external_id=external_id).pk
        self.ids[(kind, external_id)] = feature_id
        return feature_id

    def cleanup(self) -> None:
        ids = self.feature_ids()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM twin_observation WHERE feature_id = ANY(%s)", [ids])
        self.dead_letters().delete()
        # What the rules engine may have made of these devices' readings.
        GeoEvent.objects.filter(source_feature_id__in=ids).delete()
        RuleState.objects.filter(subject__regex=rf"^({'|'.join(map(str, ids))})(:|$)").delete()
        for layer in self.layers:
            Feature.objects.filter(layer=layer).delete()
            layer.delete()


SENSOR_PROPS = {"sensor_type": "air_quality", "unit": "µg/m³"}
BOAT_PROPS = {"mmsi": "574000123"}
CAMERA_PROPS = {"heading_deg": 90, "fov_deg": 60, "range_m": 80}


@pytest.fixture
def broker() -> tuple[str, int]:
    return require_broker()


def _register_defaults(registry: Devices) -> None:
    # Monthly partitions first: attaching one locks the DEFAULT partition
    # exclusively, which would wait for the test's open read transaction.
    now = datetime.now(timezone.utc)
    ensure_partitions(now - timedelta(days=8), now + timedelta(days=1))
    for n in range(10):
        registry.add("sensor", f"s{n}", NGO_MON[0] + n * 0.001, NGO_MON[1], SENSOR_PROPS)
    registry.add("boat", "b0", 107.585, 16.465, BOAT_PROPS)
    registry.add("camera", "c0", NGO_MON[0], NGO_MON[1] + 0.001, CAMERA_PROPS)


@pytest.fixture
def devices(db) -> Iterator[Devices]:
    """Ten sensors, one boat and one camera in Huế under a fresh topic root (committed); removed afterwards."""
    registry = Devices(root=unique_root())
    in_thread(_register_defaults, registry)
    yield registry
    in_thread(registry.cleanup)


def worker_config(root: str, name: str, group: str | None = None, url: str | None = None, **sections) -> IngestConfig:
    """A worker configuration for tests: own root, name and group, quick flushes."""
    overrides = {"topics": {"root": root}, "worker": {"name": name, "shared_group": group or f"g{name}"},
                 "batch": {"flush_interval_ms": 50, "retry_max_s": 1},
                 "broker": {"reconnect_min_s": 1, "reconnect_max_s": 2, "session_expiry_s": 300}}
    if url:
        overrides["broker"]["url"] = url
    for section, values in sections.items():
        overrides[section] = {**overrides.get(section, {}), **values}
    return load_config(None, **overrides)


@pytest.fixture
def start_worker(broker, db) -> Iterator[Callable[..., IngestWorker]]:
    """Start workers in threads (connected and subscribed before returning); they end their sessions afterwards."""
    started: list[IngestWorker] = []

    def start(cfg: IngestConfig, rules=None, ready: bool = True) -> IngestWorker:
        worker = IngestWorker(cfg, rules=rules)
        worker.start_thread()
        started.append(worker)
        if ready and not worker.wait_ready(WAIT_S):
            pytest.fail(f"worker {cfg.worker.name} did not connect and subscribe within {WAIT_S:.0f} s")
        return worker

    yield start
    for worker in started:
        worker.stop(end_session=True)
    for worker in started:
        worker.join(10)
        if worker.cfg.broker.url == settings.MQTT_URL:     # leave no retained "offline" on the shared broker
            clear_retained(worker.adapter.availability_topic)


class Publisher:
    """A QoS 1 device-side publisher (MQTT 5) that waits for the broker's PUBACKs."""

    def __init__(self, url: str | None = None, client_id: str | None = None) -> None:
        host, port = broker_address(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"pub-{uuid.uuid4().hex}",
                                  protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(200)
        self.client.connect(host, port)
        self.client.loop_start()
        self.pending: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes | str | dict | list, qos: int = 1) -> mqtt.MQTTMessageInfo:
        if isinstance(payload, dict | list):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos)
        self.pending.append(info)
        return info

    def wait(self, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        for info in self.pending:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                pytest.fail("the broker did not acknowledge a publish in time")
        self.pending.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker) -> Iterator[Publisher]:
    pub = Publisher()
    yield pub
    pub.close()


def unique_name(prefix: str = "w") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mosquitto_binary() -> str:
    import shutil

    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if path is None:
        pytest.fail("mosquitto is not installed (make deps)")
    return path


class ThrowawayBroker:
    """A Mosquitto of the test's own on a free port, with persistence, that the test may kill.

    Never the shared broker: fault tests kill -9 this one. The persistence
    database is written on demand (``SIGUSR1``), so the test decides exactly
    what a crash may lose.
    """

    def __init__(self, directory, extra_config: str = "") -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        user = "user root\n" if os.geteuid() == 0 else ""
        self.config = self.dir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{user}"
            f"persistence true\npersistence_location {self.dir}/\nautosave_interval 3600\n"
            f"max_queued_messages 100000\nmax_inflight_messages 100\n"
            f"log_dest file {self.dir}/mosquitto.log\n{extra_config}"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> ThrowawayBroker:
        self.process = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._accepts, timeout=10, what=f"mosquitto on port {self.port}")
        return self

    def _accepts(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"mosquitto exited: {(self.dir / 'mosquitto.log').read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def save(self) -> None:
        """Make the broker write its persistence database now, and wait until it has."""
        db = self.dir / "mosquitto.db"
        before = db.stat().st_mtime_ns if db.exists() else 0
        self.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: db.exists() and db.stat().st_mtime_ns != before, timeout=10, what="the broker's save")

    def kill(self) -> None:
        """kill -9: no goodbye, no last save."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def retained(topic: str, url: str | None = None, timeout: float = 5) -> bytes | None:
    """The retained message on ``topic`` (None if there is none)."""
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("probe"), protocol=mqtt.MQTTv5)

    def on_message(c, u, message):
        got.append(message.payload)
        done.set()

    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.connect(*broker_address(url))
    client.loop_start()
    done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    return got[0] if got else None


def clear_retained(topic: str, url: str | None = None) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("probe"), protocol=mqtt.MQTTv5)
    client.connect(*broker_address(url))
    client.loop_start()
    client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
