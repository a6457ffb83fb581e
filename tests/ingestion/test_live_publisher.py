# SPDX-License-Identifier: AGPL-3.0-or-later
"""The live publisher and hub against real brokers: nothing dropped silently, outages survived."""
from __future__ import annotations

import json
import logging
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from ingestion.live.config import LiveConfig
from ingestion.live.publisher import LivePublisher
from tests.ingestion.live_support import HUE_BBOX, NGO_MON, MqttListener, draft_at, live, raise_committed_view  # noqa: F401
from tests.ingestion.mqtt_support import (WAIT_S, ThrowawayBroker, free_port, require_broker, unique_name,
                                          wait_for)

pytestmark = pytest.mark.django_db


def _messages(listener: MqttListener, count: int) -> list[str]:
    wait_for(lambda: len(listener.messages) >= count, what=f"{count} messages")
    return [payload.decode() for _, payload in listener.messages]


def test_messages_published_before_the_first_connection_leave_in_order_once_connected(settings):
    require_broker()
    root = f"t{uuid.uuid4().hex[:12]}/city"
    listener = MqttListener(f"{root}/#")
    publisher = LivePublisher(LiveConfig(broker_url=settings.MQTT_URL, topic_root=root))
    try:
        for n in range(50):     # the first ones are published before the client has even connected
            assert publisher.publish(f"{root}/hue/events/{n}", json.dumps({"n": n}))
        assert publisher.flush(WAIT_S), "the broker did not acknowledge every message"
        assert [json.loads(m)["n"] for m in _messages(listener, 50)] == list(range(50))
    finally:
        publisher.stop()
        listener.close()


def test_a_full_backlog_refuses_and_logs_instead_of_dropping_silently(caplog):
    unreachable = f"mqtt://127.0.0.1:{free_port()}"
    publisher = LivePublisher(LiveConfig(broker_url=unreachable, topic_root="tnowhere/city", max_queued=10))
    try:
        with caplog.at_level(logging.WARNING, logger="ingestion.live.publisher"):
            accepted = [publisher.publish(f"tnowhere/city/hue/events/{n}", "{}") for n in range(11)]
        assert accepted == [True] * 10 + [False]
        assert publisher.refused == 1
        assert "refused" in caplog.text and "backlog full" in caplog.text
        assert publisher.flush(0.2) is False          # held, not confirmed: never reported as sent
    finally:
        publisher.stop(timeout=0.1)


def _persistent_listener(url: str, topic: str, client_id: str, received: list[bytes]) -> mqtt.Client:
    """A subscriber whose session (and queue) the broker keeps while it is away."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from tests.ingestion.mqtt_support import broker_address

    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = lambda c, u, m: received.append(m.payload)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 300
    client.connect(*broker_address(url), clean_start=False, properties=properties)
    client.loop_start()
    assert subscribed.wait(WAIT_S), "the listener could not subscribe"
    return client


def test_messages_published_while_the_broker_is_down_are_sent_when_it_returns(tmp_path):
    broker = ThrowawayBroker(tmp_path).start()
    root, listener_id, received = f"t{uuid.uuid4().hex[:12]}/city", unique_name("listener"), []
    publisher = LivePublisher(LiveConfig(broker_url=broker.url, topic_root=root))
    listener = None
    try:
        listener = _persistent_listener(broker.url, f"{root}/#", listener_id, received)
        listener.disconnect()
        listener.loop_stop()
        broker.save()                                   # the listener's session survives the crash
        assert publisher.publish(f"{root}/hue/events/0", '{"n": 0}') and publisher.flush(WAIT_S)
        broker.kill()
        wait_for(lambda: not publisher.connected.is_set(), what="the publisher to notice the outage")

        assert publisher.publish(f"{root}/hue/events/1", '{"n": 1}')       # held, not lost
        assert publisher.publish(f"{root}/hue/events/2", '{"n": 2}')
        broker.start()
        assert publisher.flush(30), "held messages were not acknowledged after the broker came back"

        listener = _persistent_listener(broker.url, f"{root}/#", listener_id, received)
        wait_for(lambda: len(received) >= 2, what="the held messages")
        assert [json.loads(p)["n"] for p in received][-2:] == [1, 2]
    finally:
        publisher.stop(timeout=0.5)
        if listener is not None:
            listener.disconnect()
            listener.loop_stop()
        broker.stop()


def test_clients_are_told_to_resync_when_the_hub_loses_the_broker(live, settings, tmp_path):
    broker = ThrowawayBroker(tmp_path).start()
    settings.LIVE = {**settings.LIVE, "broker_url": broker.url}
    try:
        client = live.operator(bbox=HUE_BBOX, events=True)
        broker.kill()
        broker.start()
        message = client.receive_type("resync", timeout=30)
        assert "reload" in message["reason"]
    finally:
        broker.stop()


def test_a_malformed_live_message_is_skipped_and_the_feed_goes_on(live, django_capture_on_commit_callbacks,
                                                                  caplog):
    client = live.operator(bbox=HUE_BBOX, events=True)
    from ingestion.live.publisher import get_publisher

    with caplog.at_level(logging.ERROR, logger="ingestion.live.hub"):
        get_publisher().publish(f"{live.root}/hue/events/0", "{not json")
        event = raise_committed_view(django_capture_on_commit_callbacks, draft_at(*NGO_MON))
        assert client.receive_type("event")["event"]["id"] == event.pk
    assert "bad live message" in caplog.text
