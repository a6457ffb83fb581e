# SPDX-License-Identifier: AGPL-3.0-or-later
"""Helpers and fixtures for the live-push tests (real Mosquitto, real PostGIS, the real ASGI app).

The ASGI application runs on an event loop in a thread of its own, as under
a server; tests drive it through Channels' ``WebsocketCommunicator`` with
small synchronous wrappers, every wait bounded. The consumer's database
work runs on asgiref's executor thread, on its own connection, so what it
must see (users, tokens, sessions, layers) is *committed* through
``in_thread`` and removed afterwards. Events are raised in the test's own
transaction and their ``on_commit`` announcements run through
``django_capture_on_commit_callbacks(execute=True)``, so the city loaded
once per session is never flushed.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point
from django.db import connections
from django.test import Client

import ingestion.live
from tests.ingestion.mqtt_support import WAIT_S, NGO_MON, broker_address, in_thread, require_broker
from twin.services import EventDraft, create_api_token, raise_event

HUE_BBOX = [107.55, 16.44, 107.62, 16.50]          # the citadel and around: covers NGO_MON
HANOI_BBOX = [105.80, 21.00, 105.90, 21.08]        # far from every Huế event
QUIET_S = 1.0                                      # how long "nothing arrives" is watched


class LoopThread:
    """An asyncio event loop running in its own thread; :meth:`run` waits for a coroutine, bounded."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="asgi-loop", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = WAIT_S) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            pytest.fail(f"the ASGI side did not answer within {timeout:.0f} s")

    def close(self) -> None:
        # The consumer's queries ran on asgiref's executor thread: close its connection there,
        # or the test database cannot be dropped at the end of the session.
        self.run(sync_to_async(connections.close_all, thread_sensitive=True)())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class WsClient:
    """A WebSocket client of the real ASGI application (``twin.asgi.application``)."""

    def __init__(self, runner: LoopThread, *, token: str | None = None, via: str = "header",
                 headers: list[tuple[bytes, bytes]] | None = None, subprotocols: list[str] | None = None) -> None:
        self.runner = runner
        path, headers, subprotocols = "/ws/live", list(headers or []), list(subprotocols or [])
        if token is not None and via == "header":
            headers.append((b"authorization", f"Bearer {token}".encode()))
        elif token is not None and via == "subprotocol":
            subprotocols += ["citytwin.live", f"bearer.{token}"]
        elif token is not None and via == "query":
            path += f"?token={token}"
        self.comm: WebsocketCommunicator = runner.run(self._make(path, headers, subprotocols))
        self.subprotocol: str | None = None

    @staticmethod
    async def _make(path, headers, subprotocols) -> WebsocketCommunicator:
        from twin.asgi import application

        return WebsocketCommunicator(application, path, headers=headers, subprotocols=subprotocols)

    def connect(self) -> dict[str, Any]:
        """Open the socket; returns the first server message (``hello`` or ``error``)."""
        connected, self.subprotocol = self.runner.run(self.comm.connect(timeout=WAIT_S))
        assert connected, "the server did not accept the WebSocket handshake"
        return self.receive()

    def send(self, data: dict[str, Any]) -> None:
        self.runner.run(self.comm.send_json_to(data))

    def receive(self, timeout: float = WAIT_S) -> dict[str, Any]:
        output = self.runner.run(self.comm.receive_output(timeout), timeout + 5)
        assert output["type"] == "websocket.send", f"expected a message, got {output}"
        return json.loads(output["text"])

    def receive_type(self, kind: str, timeout: float = WAIT_S) -> dict[str, Any]:
        """The next message of type ``kind``, skipping others (e.g. a ``feature`` while waiting for an ``event``)."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(max(0.05, deadline - time.monotonic()))
            if message["type"] == kind:
                return message

    def subscribe(self, **subscription: Any) -> dict[str, Any]:
        self.send({"type": "subscribe", **subscription})
        answer = self.receive()
        assert answer["type"] == "subscribed", answer
        assert answer["live"], "the hub did not subscribe on the broker in time"
        return answer

    def receives_nothing(self, seconds: float = QUIET_S) -> bool:
        return self.runner.run(self.comm.receive_nothing(timeout=seconds, interval=0.02), seconds + 5)

    def close_code(self, timeout: float = WAIT_S) -> int | None:
        output = self.runner.run(self.comm.receive_output(timeout), timeout + 5)
        assert output["type"] == "websocket.close", f"expected the socket to close, got {output}"
        return output.get("code")

    def disconnect(self) -> None:
        self.runner.run(self.comm.disconnect(timeout=5))


@dataclass
class People:
    """Committed users (with API tokens) for one test; deleted afterwards."""

    ids: list[int] = field(default_factory=list)

    def add(self, role: str | None, *, superuser: bool = False) -> tuple[str, str]:
        """A user with ``role`` (or none): ``(username, token)``."""
        def create() -> tuple[str, str]:
            name = f"live-{role or 'none'}-{uuid.uuid4().hex[:8]}"
            model = get_user_model()
            user = model.objects.create_superuser(name, password=None) if superuser else \
                model.objects.create_user(name)
            if role:
                user.groups.add(Group.objects.get_or_create(name=role)[0])
            self.ids.append(user.pk)
            return name, create_api_token(user, "live-test")[1]

        return in_thread(create)

    def session_cookie(self, username: str) -> bytes:
        """A committed login session for ``username``, as a ``cookie`` header value."""
        def login() -> str:
            client = Client()
            client.force_login(get_user_model().objects.get(username=username))
            return client.cookies["sessionid"].value

        return f"sessionid={in_thread(login)}".encode()

    def cleanup(self) -> None:
        def delete() -> None:
            from django.contrib.sessions.models import Session

            for session in Session.objects.all():
                if str(session.get_decoded().get("_auth_user_id")) in {str(i) for i in self.ids}:
                    session.delete()
            get_user_model().objects.filter(pk__in=self.ids).delete()

        in_thread(delete)


@dataclass
class LiveEnv:
    root: str
    runner: LoopThread
    people: People
    clients: list[WsClient] = field(default_factory=list)

    def client(self, **kwargs: Any) -> WsClient:
        ws = WsClient(self.runner, **kwargs)
        self.clients.append(ws)
        return ws

    def operator(self, **subscription: Any) -> WsClient:
        """A connected operator (READ_EVENTS, private layers) with ``subscription`` active."""
        _, token = self.people.add("operator")
        ws = self.client(token=token)
        assert ws.connect()["type"] == "hello"
        if subscription:
            ws.subscribe(**subscription)
        return ws


@pytest.fixture
def live(settings, db) -> Iterator[LiveEnv]:
    """Live push on a topic root of this test's own, the hub and publisher built afresh for it."""
    require_broker()
    root = f"t{uuid.uuid4().hex[:12]}/city"
    settings.LIVE = {**settings.LIVE, "topic_root": root}
    settings.LIVE_ANNOUNCER = "ingestion.live.announce"
    ingestion.live.reset()
    env = LiveEnv(root=root, runner=LoopThread(), people=People())
    try:
        yield env
    finally:
        for ws in env.clients:
            try:
                env.runner.run(ws.comm.disconnect(timeout=5), 10)
            except BaseException:   # already closed by the server
                pass
        env.runner.close()
        ingestion.live.reset()
        env.people.cleanup()


def draft_at(lon: float, lat: float, **overrides: Any) -> EventDraft:
    values = dict(kind="alert", category="fire", geom=Point(lon, lat, srid=4326),
                  occurred_at=datetime.now(timezone.utc), severity=4, title="Cháy thử / test fire",
                  payload={"reporter_name": "Nguyễn Văn A", "reporter_phone": "0905123456"})
    values.update(overrides)
    return EventDraft(**values)


def raise_committed_view(capture: Callable, draft: EventDraft):
    """``raise_event`` in the test's transaction, running its on-commit announcement as a commit would."""
    with capture(execute=True):
        event, _ = raise_event(draft)
    return event


class MqttListener:
    """A plain paho subscriber, as another system would be (QoS 1)."""

    def __init__(self, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"listener-{uuid.uuid4().hex[:10]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self._subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.connect(*broker_address())
        self.client.loop_start()
        if not self._subscribed.wait(WAIT_S):
            pytest.fail(f"could not subscribe to {topic}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"n={len(ordered)} p50={statistics.median(ordered):.1f} ms p99={p99:.1f} ms max={ordered[-1]:.1f} ms"


__all__ = ["HANOI_BBOX", "HUE_BBOX", "NGO_MON", "QUIET_S", "LiveEnv", "LoopThread", "MqttListener", "People",
           "WsClient", "draft_at", "live", "percentiles", "raise_committed_view"]
