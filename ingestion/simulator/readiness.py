# SPDX-License-Identifier: AGPL-3.0-or-later
"""Wait until ingestion workers are online before publishing.

On a fresh broker, a worker's persistent session does not exist until it
first subscribes, so anything a device publishes before that is dropped by
the broker (nobody is subscribed). Workers say ``online`` (retained) on
``{root}/{city}/ingest/{worker}/available`` once subscribed
(``ingestion/adapters/mqtt.py``), so a publisher that waits for that message
loses nothing. Used by ``twin simulate --wait-for-ingest`` (the demo) and the
benchmark.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable

import paho.mqtt.client as mqtt

from ingestion.topics import TopicScheme


class IngestNotReady(ConnectionError):
    """No (or not every expected) ingestion worker said ``online`` in time."""


def wait_for_ingest(host: str, port: int, root: str, city: str, timeout: float, *,
                    names: Iterable[str] | None = None, username: str | None = None,
                    password: str | None = None) -> set[str]:
    """Block until a worker serving ``city`` (or every worker in ``names``) is online; their names.

    A worker serving every city announces itself under the city ``all``;
    both are accepted. Raises :class:`IngestNotReady` after ``timeout`` s.
    """
    wanted = set(names or ())
    cities = {city, TopicScheme(root=root, city="+").availability("w").split("/")[-4]}   # "all": every city
    online: set[str] = set()
    changed = threading.Event()

    def on_message(client, userdata, message) -> None:
        parts = message.topic.split("/")
        if len(parts) >= 4 and parts[-4] in cities:
            (online.add if message.payload == b"online" else online.discard)(parts[-2])
            changed.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"citytwin-wait-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{root}/+/ingest/+/available", qos=1)
    try:
        client.connect(host, port)
    except OSError as exc:
        raise IngestNotReady(f"cannot reach the broker at {host}:{port}: {exc}") from None
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout
        while not (wanted <= online if wanted else online):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(wanted - online) if wanted else []
                raise IngestNotReady(
                    f"no ingestion worker said online on {root}/{{{','.join(sorted(cities))}}}/ingest/+/available "
                    f"within {timeout:g} s" + (f" (missing: {', '.join(missing)})" if missing else "")
                    + ": is `twin run-ingest` running against this broker and topic root?")
            changed.wait(min(left, 0.1))
            changed.clear()
        return set(online)
    finally:
        client.disconnect()
        client.loop_stop()


__all__ = ["IngestNotReady", "wait_for_ingest"]
