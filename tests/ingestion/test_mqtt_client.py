# SPDX-License-Identifier: AGPL-3.0-or-later
"""The buffered paho client: every message whole and in order, with far fewer socket reads.

Reconnects (a new socket, an empty buffer) are exercised by tests/ingestion/test_mqtt_faults.py,
whose workers run on this client while Mosquitto is killed and restarted mid-stream.
"""
from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingestion.mqtt_client import READ_SIZE, BufferedClient
from tests.ingestion.mqtt_support import Publisher, broker, unique_root, wait_for  # noqa: F401 (fixture)

# Sizes around the MQTT remaining-length boundaries and the read buffer's size.
SIZES = [0, 1, 100, 120, 127, 128, 300, 16_380, 16_384, READ_SIZE - 10, READ_SIZE + 10, 200_000]


class Collector:
    """A manual-ack QoS 1 subscriber on the buffered client, with a session that outlives it.

    It acknowledges in batches of ``ack_every`` through ``puback_many``, as
    the ingestion workers do after each commit.
    """

    def __init__(self, host: str, port: int, topic: str, client_id: str, ack_every: int = 100) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.unacked: list[int] = []
        self.ack_every = ack_every
        self.subscribed = threading.Event()
        self.client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True,
                                     client_id=client_id)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, options=SubscribeOptions(qos=1))
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 300
        self.client.connect(host, port, clean_start=False, properties=properties)
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK"

    def _on_message(self, client, userdata, message) -> None:
        self.received.append((message.topic, message.payload))
        self.unacked.append(message.mid)
        if len(self.unacked) >= self.ack_every:
            client.puback_many(self.unacked)
            self.unacked = []

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def payload(index: int) -> bytes:
    size = SIZES[index % len(SIZES)]
    head = f"{index}:".encode()
    return (head + bytes((index + k) % 251 for k in range(size)))[: max(size, len(head))]


def test_a_buffered_subscriber_gets_every_message_whole_and_in_order_with_few_socket_reads(broker):
    host, port = broker
    topic, client_id = f"{unique_root()}/stream", f"buf-{uuid.uuid4().hex[:10]}"
    collector = Collector(host, port, topic, client_id)
    publisher = Publisher()
    try:
        expected = [payload(i) for i in range(3_000)]
        for body in expected:
            publisher.publish(topic, body)
        publisher.wait()
        wait_for(lambda: len(collector.received) >= len(expected), what="all 3,000 messages")
        assert [body for _, body in collector.received] == expected
        assert {t for t, _ in collector.received} == {topic}
        # Plain paho makes at least three recv calls per packet (command, length, body).
        assert collector.client.socket_reads < len(expected), collector.client.socket_reads
        assert collector.client.buffered_bytes() == 0
        assert collector.client.is_connected() and collector.unacked == []
    finally:
        publisher.close()
        collector.close()
    # Every batched PUBACK was taken: the resumed session has nothing to redeliver.
    again = Collector(host, port, topic, client_id)
    try:
        time.sleep(1.0)
        assert again.received == []
    finally:
        again.close()


def test_messages_published_in_bursts_all_arrive_in_order(broker):
    """``burst`` only delays the network thread's wake-up: nothing is lost, reordered or left queued."""
    host, port = broker
    topic, client_id = f"{unique_root()}/burst", f"buf-{uuid.uuid4().hex[:10]}"
    collector = Collector(host, port, topic, client_id, ack_every=1)
    sender = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                            client_id=f"bufpub-{uuid.uuid4().hex[:10]}")
    sender.connect(host, port)
    sender.loop_start()
    try:
        infos = []
        for start in range(0, 1_000, 50):
            with sender.burst():
                infos += [sender.publish(topic, f"{i}".encode(), qos=1) for i in range(start, start + 50)]
        for info in infos:
            info.wait_for_publish(10)
        wait_for(lambda: len(collector.received) >= 1_000, what="1,000 burst messages")
        assert [body for _, body in collector.received] == [f"{i}".encode() for i in range(1_000)]
    finally:
        sender.disconnect()
        sender.loop_stop()
        collector.close()


def test_receiving_messages_leaves_no_reference_cycles_for_the_garbage_collector(broker):
    """paho's per-message topic look-up built a recursive closure (a cycle of six objects per message)."""
    import gc

    host, port = broker
    topic, client_id = f"{unique_root()}/cycles", f"buf-{uuid.uuid4().hex[:10]}"
    collector = Collector(host, port, topic, client_id, ack_every=50)
    publisher = Publisher()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for i in range(500):
            publisher.publish(topic, f"{i}".encode())
        publisher.wait()
        wait_for(lambda: len(collector.received) >= 500, what="500 messages")
        gc.collect()
        paho_garbage = [o for o in gc.garbage if getattr(type(o), "__module__", "").startswith("paho")
                        or getattr(o, "__module__", "") == "paho.mqtt.matcher"]
        # Was ~3,000 (six per message).
        assert len(gc.garbage) < 500 and not paho_garbage, (len(gc.garbage), paho_garbage[:5])
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        publisher.close()
        collector.close()


def test_per_topic_callbacks_still_take_their_messages_and_the_rest_go_to_on_message(broker):
    host, port = broker
    root = unique_root()
    got: dict[str, list[bytes]] = {"filtered": [], "other": []}
    client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                            client_id=f"buf-{uuid.uuid4().hex[:10]}")
    subscribed = threading.Event()
    client.message_callback_add(f"{root}/alarm/#", lambda c, u, m: got["filtered"].append(m.payload))
    client.on_message = lambda c, u, m: got["other"].append(m.payload)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{root}/#", options=SubscribeOptions(qos=1))
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    client.connect(host, port)
    client.loop_start()
    publisher = Publisher()
    try:
        assert subscribed.wait(10)
        publisher.publish(f"{root}/alarm/1", b"fire")
        publisher.publish(f"{root}/air/1", b"pm25")
        publisher.wait()
        wait_for(lambda: got["filtered"] and got["other"], what="both messages")
        assert got == {"filtered": [b"fire"], "other": [b"pm25"]}
    finally:
        publisher.close()
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":   # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"]))
