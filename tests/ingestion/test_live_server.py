# SPDX-License-Identifier: AGPL-3.0-or-later
"""A real server process (daphne) serving /ws/live to the client helper the benchmark uses.

This is the cross-process path of a deployment: the event is committed in
this process, republished on MQTT, picked up by the server's hub and pushed
over a real socket.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from ingestion.live.client import LiveClient, LiveRefused
from tests.ingestion.live_support import HUE_BBOX, NGO_MON, draft_at, live, percentiles  # noqa: F401
from tests.ingestion.mqtt_support import WAIT_S, free_port, wait_for
from twin.services import raise_event

pytestmark = pytest.mark.django_db


def _database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def server(live) -> Iterator[str]:
    """daphne serving ``twin.asgi:application`` on the test database and this test's topic root."""
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "twin.settings", "DATABASE_URL": _database_url(),
           "MQTT_URL": django_settings.MQTT_URL, "LIVE_TOPIC_ROOT": live.root, "LOG_LEVEL": "WARNING"}
    daphne = Path(sys.executable).with_name("daphne")
    process = subprocess.Popen([str(daphne), "-b", "127.0.0.1", "-p", str(port), "twin.asgi:application"],
                               env=env, cwd=django_settings.BASE_DIR, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        wait_for(lambda: process.poll() is not None or _accepts(port), timeout=60, what="daphne to listen")
        if process.poll() is not None:
            pytest.fail(f"daphne exited: {process.stderr.read().decode()[-3000:]}")
        yield f"ws://127.0.0.1:{port}/ws/live"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_client_helper_receives_an_event_from_a_daphne_server(live, server, django_capture_on_commit_callbacks,
                                                                  capsys):
    _, token = live.people.add("operator")
    client = LiveClient(server, token=token)

    async def open_and_subscribe() -> dict:
        await client.__aenter__()
        return await client.subscribe(bbox=HUE_BBOX, events=True)

    assert live.runner.run(open_and_subscribe())["live"] is True
    assert client.hello["auth"] == "token"
    samples = []
    try:
        for n in range(30):
            with django_capture_on_commit_callbacks(execute=False) as callbacks:
                event, _ = raise_event(draft_at(NGO_MON[0] + n * 1e-5, NGO_MON[1], title=f"served {n}"))
            started = time.time()
            for callback in callbacks:      # what the commit runs: read the row, publish
                callback()
            message = live.runner.run(client.receive(WAIT_S))
            assert (message.data["type"], message.data["event"]["id"]) == ("event", event.pk)
            samples.append((message.received_at - started) * 1000)
    finally:
        live.runner.run(client.close())
    with capsys.disabled():
        print(f"\nlive push, commit → WebSocket through daphne (separate process, idle): {percentiles(samples)}")


def test_the_client_helper_reports_a_refused_token(live, server):
    async def connect() -> None:
        async with LiveClient(server, token="ct_0123456789_wrong"):
            pass

    with pytest.raises(LiveRefused) as refused:
        live.runner.run(connect())
    assert refused.value.code == "NotAuthenticated"


def test_a_multipart_form_reaches_django_whole_through_daphne(server):
    """The form body Twisted no longer parses (twin/daphne_requests.py) still arrives whole: Django parses it."""
    body = encode_multipart(BOUNDARY, {"service_code": "littering", "lat": "16.46", "long": "107.58",
                                       "media_url": "http://example.invalid/a.jpg",
                                       "media": SimpleUploadedFile("a.jpg", os.urandom(200_000), "image/jpeg")})
    port = int(server.split(":")[2].split("/")[0])
    web = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    web.request("POST", "/open311/v2/requests.json", body=body,
                headers={"Content-Type": MULTIPART_CONTENT})
    response = web.getresponse()
    answer = json.loads(response.read())
    web.close()
    # Refused for its media_url before anything is stored: Django read that field from the multipart body.
    assert response.status == 400 and "media_url" in answer[0]["description"]
