# SPDX-License-Identifier: AGPL-3.0-or-later
"""A whole running platform for the map's browser tests, on the committed test database.

- ``twin runserver`` (daphne: HTTP, static files and ``/ws/live``) in a process of its own;
- ``twin run-ingest`` (MQTT → PostGIS → rules → live announcements) in another;
- devices registered in Huế under a topic root of this run's own (a fire-alarm panel, air
  stations, a camera), an operator who logs in with a session cookie;
- Debian's Chromium through Playwright with SwiftShader WebGL; every host name but 127.0.0.1
  and localhost resolves to nothing, and every request is recorded.

Nothing is mocked: the alert a test publishes travels device → Mosquitto → worker → PostGIS →
rules → MQTT live topic → the server's hub → WebSocket → the page. Everything is removed
afterwards; the city loaded once per session is never flushed.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from shapely.geometry import Point

from tests.ingestion.mqtt_support import wait_for  # noqa: F401 (also used by the map tests)
from twin.models import City, Layer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking", "--disable-renderer-backgrounding",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]
LOCAL_PREFIXES = ("http://127.0.0.1:", "ws://127.0.0.1:", "http://localhost:", "ws://localhost:",
                  "data:", "blob:", "about:")
VIEWPORT = {"width": 1200, "height": 800}
START_S = 90          # a loaded 2-core machine: server/worker start-up, software WebGL
NGO_MON = (107.5786, 16.4679)
ARTIFACTS = Path(os.environ.get("CITYTWIN_TEST_ARTIFACTS", Path(__file__).resolve().parent / "artifacts"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]




def _database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _broker() -> tuple[str, int]:
    parts = urlsplit(settings.MQTT_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 1883
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"MQTT broker {host}:{port} (MQTT_URL) is unreachable: {exc}. Run `make services`.")
    return host, port


@dataclass
class Devices:
    """Layers and devices this run registered (committed), removed afterwards."""

    root: str
    layers: dict[str, Layer] = field(default_factory=dict)

    def add_layer(self, key: str, title_vi: str, title_en: str, kind: str, style: dict) -> Layer:
        from twin.services import LayerSpec, ensure_layer

        slug = f"mapt-{key}-{uuid.uuid4().hex[:6]}"
        self.layers[key] = ensure_layer(LayerSpec(slug=slug, title_vi=title_vi, title_en=title_en, kind=kind,
                                                  geometry_type="Point", style=style),
                                        city=City.objects.get(slug="hue"))
        return self.layers[key]

    def add(self, key: str, external_id: str, lon: float, lat: float, properties: dict) -> None:
        from twin.services import FeatureRow, write_features

        write_features(self.layers[key], [FeatureRow(external_id=external_id, geom=Point(lon, lat),
                                                     properties=properties)])

    def topic(self, device_id: str, stream: str) -> str:
        return f"{self.root}/hue/sensor/{device_id}/{stream}"

    def cleanup(self) -> None:
        """Remove what this run made, in plain SQL: only these tables, whatever other apps' models say."""
        layer_ids = [layer.pk for layer in self.layers.values()]
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM twin_feature WHERE layer_id = ANY(%s)", [layer_ids])
            ids = [row[0] for row in cursor.fetchall()]
            events = "SELECT id FROM twin_geoevent WHERE source_feature_id = ANY(%s) OR layer_id = ANY(%s)"
            cursor.execute("DELETE FROM twin_observation WHERE feature_id = ANY(%s)", [ids])
            cursor.execute(f"DELETE FROM ingestion_rulestate WHERE event_id IN ({events})", [ids, layer_ids])
            cursor.execute(f"DELETE FROM twin_geoeventtransition WHERE event_id IN ({events})", [ids, layer_ids])
            cursor.execute(f"DELETE FROM twin_geoevent WHERE id IN ({events})", [ids, layer_ids])
            cursor.execute("DELETE FROM ingestion_rulestate WHERE subject ~ %s", [rf"^({'|'.join(map(str, ids)) or '0'})(:|$)"])
            cursor.execute("DELETE FROM ingestion_deadletter WHERE topic LIKE %s", [self.root + "/%"])
            cursor.execute("DELETE FROM twin_devicecredential WHERE feature_id = ANY(%s)", [ids])
            cursor.execute("DELETE FROM twin_feature WHERE id = ANY(%s)", [ids])
            cursor.execute("DELETE FROM twin_layer WHERE id = ANY(%s)", [layer_ids])


def delete_user(user_id: int, session: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_session WHERE session_key = %s", [session])
        cursor.execute("UPDATE twin_geoeventtransition SET actor_id = NULL WHERE actor_id = %s", [user_id])
        for table in ("auth_user_groups", "auth_user_user_permissions", "django_admin_log", "twin_apitoken"):
            cursor.execute(f"DELETE FROM {table} WHERE user_id = %s", [user_id])
        cursor.execute("DELETE FROM auth_user WHERE id = %s", [user_id])


def register_devices(root: str) -> Devices:
    from twin.services import ensure_partitions

    now = datetime.now(timezone.utc)
    ensure_partitions(now - timedelta(days=2), now + timedelta(days=1))
    devices = Devices(root=root)
    devices.add_layer("fire", "Tủ báo cháy (thử)", "Fire panels (test)", "sensor", {"fill": "#6a1b9a"})
    for n, (dx, dy) in enumerate([(0.004, -0.002), (-0.005, -0.003)], start=1):
        devices.add("fire", f"fa-{n}", NGO_MON[0] + dx, NGO_MON[1] + dy, {"sensor_type": "fire_alarm", "unit": "state"})
    devices.add_layer("air", "Trạm không khí (thử)", "Air stations (test)", "sensor", {"fill": "#2e7d32"})
    for n in range(3):
        devices.add("air", f"aq-{n}", NGO_MON[0] - 0.003 + n * 0.003, NGO_MON[1] + 0.004,
                    {"sensor_type": "air_quality", "unit": "µg/m³"})
    devices.add_layer("cam", "Camera (thử)", "Cameras (test)", "camera", {"fill": "#1565c0"})
    devices.add("cam", "cam-1", NGO_MON[0], NGO_MON[1] + 0.001, {"heading_deg": 90, "fov_deg": 60, "range_m": 80})
    return devices


class Publisher:
    """A device's side of MQTT: QoS 1 publishes, each waited for."""

    def __init__(self) -> None:
        host, port = _broker()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"mapt-{uuid.uuid4().hex[:10]}",
                                  protocol=mqtt.MQTTv5)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: dict) -> float:
        """Publish and wait for the broker's PUBACK; returns the wall-clock time of the publish."""
        started = time.time()
        info = self.client.publish(topic, json.dumps(payload), qos=1)
        info.wait_for_publish(10)
        if not info.is_published():
            pytest.fail("the broker did not acknowledge a publish")
        return started

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _spawn(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    handle = log.open("wb")
    return subprocess.Popen(args, env=env, cwd=settings.BASE_DIR, stdout=handle, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _worker_ready(root: str, name: str, timeout: float) -> None:
    """The worker publishes its retained availability flag once connected and subscribed."""
    host, port = _broker()
    seen = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"mapt-watch-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: m.payload.startswith(b"online") and seen.set()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{root}/+/ingest/{name}/available")
    client.connect(host, port)
    client.loop_start()
    try:
        if not seen.wait(timeout):
            pytest.fail(f"the ingestion worker {name} did not come online within {timeout:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()


@dataclass
class Stack:
    base: str
    root: str
    devices: Devices
    username: str
    session: str
    publisher: Publisher
    logs: Path


def start_stack(tmp: Path) -> Iterator[Stack]:
    """Server + ingestion worker + devices + operator; torn down in reverse order."""
    _broker()
    if not connection.settings_dict["NAME"].startswith("test"):
        pytest.fail("the map tests need pytest-django's test database (mark the tests django_db), "
                    f"not {connection.settings_dict['NAME']!r}")
    root = f"mapt{uuid.uuid4().hex[:8]}/city"
    devices = register_devices(root)
    name = f"mapt-{uuid.uuid4().hex[:8]}"
    user = get_user_model().objects.create_user(f"op-{name}", password=uuid.uuid4().hex)
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "twin.settings", "DATABASE_URL": _database_url(),
           "MQTT_URL": settings.MQTT_URL, "LIVE_TOPIC_ROOT": root, "DEBUG": "true", "LOG_LEVEL": "WARNING"}
    config = tmp / "ingest.toml"
    config.write_text(f'[topics]\nroot = "{root}"\n[worker]\nname = "{name}"\nshared_group = "g{name}"\n'
                      '[batch]\nflush_interval_ms = 50\n[broker]\nsession_expiry_s = 60\n')
    bindir = Path(sys.executable).parent
    server = _spawn([str(bindir / "python"), "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], env,
                    tmp / "server.log")
    worker = _spawn([str(bindir / "twin"), "run-ingest", "--config", str(config)], env, tmp / "worker.log")
    publisher = None
    try:
        wait_for(lambda: server.poll() is not None or _accepts(port), START_S, "the server to listen")
        if server.poll() is not None:
            pytest.fail(f"the server exited: {(tmp / 'server.log').read_text()[-3000:]}")
        _worker_ready(root, name, START_S)
        publisher = Publisher()
        yield Stack(f"http://127.0.0.1:{port}", root, devices, user.get_username(), session, publisher, tmp)
    finally:
        if publisher:
            publisher.close()
        _stop(worker)
        _stop(server)
        devices.cleanup()
        delete_user(user.pk, session)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid, application_name, client_port, state, left(query, 80) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            print("other sessions:", cursor.fetchall())


class Browser_:
    """One Chromium for a module; pages record their requests and console errors."""

    def __init__(self) -> None:
        assert CHROMIUM.exists(), "Debian's chromium is required (apt-get install chromium)"
        self.playwright = sync_playwright().start()
        self.browser: Browser = self.playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

    def page(self, stack: Stack, *, locale: str = "vi-VN", logged_in: bool = True) -> tuple[Page, list[str]]:
        # A test that failed before closing its page leaves it drawing (software WebGL): close it,
        # or every later test of the module starves and times out too.
        for leftover in self.browser.contexts:
            leftover.close()
        context = self.browser.new_context(viewport=VIEWPORT, locale=locale)
        if logged_in:
            context.add_cookies([{"name": "sessionid", "value": stack.session, "url": stack.base}])
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        page.on("websocket", lambda ws: requests.append(ws.url))
        return page, requests

    def close(self) -> None:
        self.browser.close()
        self.playwright.stop()


def open_map(page: Page, url: str) -> None:
    """Load the map and wait until its layers are loaded and deck.gl has drawn frames."""
    page.goto(url)
    page.wait_for_function("window.citytwin && window.citytwin.ready && window.citytwin.renders > 2",
                           timeout=START_S * 1000)


# What the page held, for a wait's failure message: the time-slider moment, the events the store
# shows and holds, the alert list as drawn and the page's own errors.
PAGE_STATE_JS = """() => {
  const app = window.citytwin?.app;
  if (!app) return {script: "not started"};
  const s = app.store, brief = (e) => [e.id, e.status, e.occurred_at];
  return {ready: citytwin.ready, live: citytwin.live, moment: app.moment, cutoff: s.cutoff, errors: citytwin.errors.slice(-5),
    history: s.history.length + " " + JSON.stringify(s.history.slice(0, 12).map(brief)),
    open: s.events.size + " " + JSON.stringify([...s.events.values()].slice(0, 12).map(brief)),
    listed: [...document.querySelectorAll("#alert-list li")].slice(0, 12).map((li) => `${li.dataset.eventId}:${li.className}`),
    wallView: citytwin.wallView ?? null, wallViews: citytwin.wallViews ?? null,
    wallShown: (citytwin.wallShown || []).map((v) => v.name)};
}"""


def wait_page(page: Page, condition: str, timeout_s: float, what: str, *, context=None):
    """``page.wait_for_function`` whose failure says what the page held (and ``context()``, if given).

    Why: a bare Playwright timeout tells nothing about which half of a condition failed, so a CI
    failure could not be diagnosed after the fact.
    """
    try:
        return page.wait_for_function(condition, timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        try:
            state = page.evaluate(PAGE_STATE_JS)
        except Exception as exc:  # noqa: BLE001 (a crashed page: say so)
            state = f"unreadable: {exc}"
        extra = f"; {context()}" if context else ""
        pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; the page held "
                    f"{json.dumps(state, ensure_ascii=False, default=str)[:4000]}{extra}")


def drawn_colour(layer: str, feature: str, expected: list[int]) -> str:
    """The colour deck.gl draws a point with (its binary colour attribute), once it is ``expected``."""
    return f"""() => {{
        const deckLayer = citytwin.app.deck.props.layers.find(l => l.id === '{layer}');
        const i = deckLayer ? deckLayer.props.features.findIndex(f => String(f.id) === '{feature}') : -1;
        if (i < 0) return null;
        const rgb = [...deckLayer.props.data.attributes.getFillColor.value.slice(4 * i, 4 * i + 3)];
        return rgb.join() === '{",".join(map(str, expected))}' ? rgb : null;
    }}"""


def wait_tiles(page: Page, timeout_s: float = 60) -> None:
    """Until every visible tile layer has loaded the tiles in view (deck's isLoaded)."""
    page.wait_for_function("""() => {
        const deck = window.citytwin.app.deck;
        const layers = deck.props.layers.filter((l) => l.props.visible !== false);
        return layers.length > 0 && layers.every((l) => l.isLoaded !== false);
    }""", timeout=timeout_s * 1000, polling=500)


def remote(requests: list[str]) -> list[str]:
    return [url for url in requests if not url.startswith(LOCAL_PREFIXES)]


def save(page: Page, name: str) -> bytes:
    """A screenshot, kept under tests/map_ui/artifacts/ (gitignored; CITYTWIN_TEST_ARTIFACTS moves it) and returned as PNG bytes."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    png = page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return png


_SHARE = """async ([png, box, base, near]) => {
  const img = new Image();
  img.src = "data:image/png;base64," + png;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const [x0, y0, w, h] = box.map(Math.round);
  const px = ctx.getImageData(x0, y0, w, h).data;
  const dist = (i, [r, g, b]) => Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b);
  let hits = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (near ? dist(i, near) < 90 : dist(i, base) > 40) hits++;
  }
  return hits / (w * h);
}"""


def pixel_share(page: Page, png: bytes, box: tuple[float, float, float, float], *, base=(235, 232, 225),
                near=None) -> float:
    """Share of the pixels in ``box`` (x, y, w, h in px) that differ from ``base`` (or are near ``near``)."""
    blank = page.context.new_page()
    try:
        return blank.evaluate(_SHARE, [base64.b64encode(png).decode(), list(box), list(base),
                                       list(near) if near else None])
    finally:
        blank.close()
