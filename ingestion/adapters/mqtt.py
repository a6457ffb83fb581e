# SPDX-License-Identifier: AGPL-3.0-or-later
"""MQTT 5 adapter: a persistent, shared, manually acknowledged subscription.

- **Nothing lost while away**: a fixed client id per worker, ``clean_start``
  false and a session expiry interval (MQTT 5 §3.1.2.4, §3.1.2.11.2), QoS 1.
  The broker keeps the worker's queue while it is down or restarting.
- **Acknowledged only once stored**: ``manual_ack=True``; the sink calls the
  delivery's ``ack`` after its transaction commits. A crash before that means
  redelivery, not loss.
- **Scale-out**: every worker subscribes through ``$share/{group}/...``
  (MQTT 5 §4.8.2), so each message goes to one worker of the group.
- **Back-pressure**: the CONNECT ``Receive Maximum`` (§3.1.2.11.3) bounds how
  many unacknowledged messages the broker sends, so a slow database slows
  the broker instead of filling memory.
- **Availability**: a retained last will ``offline`` on
  ``{root}/{city}/ingest/{worker}/available``; ``online`` (retained) on connect.

Reconnection with back-off is paho's (``reconnect_delay_set``); every
(re)connect re-subscribes from the topic table (Home Assistant's pattern,
with the ``return`` on failure that frigate forgets).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingestion.adapters.base import Adapter
from ingestion.config import IngestConfig
from ingestion.mqtt_client import BufferedClient
from ingestion.parsing import Reason, parse_message, reject
from ingestion.sink import Delivery
from ingestion.topics import TopicScheme

logger = logging.getLogger(__name__)

LOG_PAYLOAD_BYTES = 8192


class MqttAdapter(Adapter):
    """Receives device messages from the broker and hands them to the sink."""

    def __init__(self, cfg: IngestConfig, sink: Callable[[Delivery], None]) -> None:
        super().__init__(cfg, sink)
        self.scheme = TopicScheme(root=cfg.topics.root, city=cfg.topics.city)
        self.availability_topic = self.scheme.availability(cfg.worker.name)
        self._host, self._port, self._tls, self._username, self._password = cfg.broker.endpoint()
        # Acks belong to one connection: a packet id from a previous connection
        # may name another message on this one. The generation, bumped under
        # the lock on every connect and disconnect, keeps stale acks out.
        self._generation = 0
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=self.cfg.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        if self._tls:
            client.tls_set()
        client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(self.cfg.broker.reconnect_min_s, self.cfg.broker.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.cfg.broker.session_expiry_s
        properties.ReceiveMaximum = self.cfg.broker.receive_maximum
        logger.info("connecting to mqtt://%s:%s as %s", self._host, self._port, self.cfg.client_id)
        # clean_start=False on the first connect too: resume the session a
        # previous run of this worker left, with everything queued since.
        self.client.connect_async(self._host, self._port, keepalive=self.cfg.broker.keepalive_s,
                                  clean_start=False, properties=properties)
        self.client.loop_start()

    def stop(self, *, end_session: bool = False) -> None:
        """Say ``offline``, disconnect, stop the network thread.

        The broker keeps the session (and queues this worker's share of the
        stream) unless ``end_session``: then the DISCONNECT sets the session
        expiry to 0 (MQTT 5 §3.14.2.2.2) and the broker forgets it, which is
        how a worker leaves its shared group for good.
        """
        if self.client.is_connected():
            info = self.client.publish(self.availability_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                pass
            if not info.is_published():
                logger.warning("could not publish offline on %s", self.availability_topic)
        properties = None
        if end_session:
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0
        self.client.disconnect(properties=properties)
        self.client.loop_stop()
        self.connected.clear()

    def _bump(self) -> None:
        with self._lock:
            self._generation += 1

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("broker refused the connection: %s", reason_code)
            return
        self._bump()
        if not flags.session_present:
            logger.warning("no session on the broker for %s: starting a new one (anything queued for a "
                           "previous session is gone)", self.cfg.client_id)
        options = SubscribeOptions(qos=1)
        filters = self.scheme.subscriptions(self.cfg.worker.shared_group)
        result, _ = client.subscribe([(f, options) for f in filters])
        if result != mqtt.MQTT_ERR_SUCCESS:
            logger.error("subscribe failed: %s", mqtt.error_string(result))
            return
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        self.connected.set()
        logger.info("connected (session %s), subscribed to %s", "resumed" if flags.session_present else "new",
                    ", ".join(filters))

    def _on_connect_fail(self, client, userdata) -> None:
        logger.warning("cannot reach the broker at %s:%s; retrying with back-off", self._host, self._port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._bump()
        self.connected.clear()
        self.subscribed.clear()
        if reason_code != 0:
            logger.warning("disconnected from the broker (%s); reconnecting with back-off", reason_code)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            logger.error("broker refused subscriptions: %s", ", ".join(refused))
        else:
            self.subscribed.set()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        """Parse one message and hand it over; one bad message never stops the loop."""
        received_at = datetime.now(timezone.utc)
        generation = self._generation
        payload = message.payload
        try:
            topic = message.topic
        except UnicodeDecodeError:   # MQTT topics are UTF-8; paho raises on access otherwise
            topic = message._topic.decode("utf-8", "replace")
        try:
            parsed = parse_message(topic, payload, received_at, scheme=self.scheme, limits=self.cfg.limits)
        except Exception as exc:
            logger.exception("cannot parse message on %s: %r", topic, payload[:LOG_PAYLOAD_BYTES])
            parsed = reject(topic, payload[:self.cfg.limits.keep_bytes], Reason.INTERNAL_ERROR, repr(exc)[:500],
                            received_at, size=len(payload))
        ack = _Ack(self, message.mid, message.qos, generation)
        self.sink(Delivery(parsed, ack))

    def _ack(self, mid: int, qos: int, generation: int) -> None:
        if qos == 0:
            return
        with self._lock:
            if generation != self._generation:
                # Connection changed since delivery: the broker redelivers this
                # message on the resumed session (and storage is idempotent).
                return
            self.client.ack(mid, qos)


    def ack_many(self, acks: list[_Ack]) -> None:
        """Acknowledge a committed batch, in arrival order, as one write.

        ``Client.ack`` queues one PUBACK, wakes paho's network thread through
        its socket pair and costs one ``send``, per message: ~10 % of a
        single-reading worker (py-spy). :meth:`BufferedClient.puback_many`
        queues the batch's PUBACKs as one write. Acks of an earlier
        connection are dropped (the broker redelivers those messages).
        """
        with self._lock:
            current = [a for a in acks if a.qos and a.generation == self._generation]
            self.client.puback_many([a.mid for a in current if a.qos == 1])
            for a in current:
                if a.qos != 1:
                    self.client.ack(a.mid, a.qos)


class _Ack:
    """The acknowledgement of one delivered message (a small object, not a closure, for speed).

    ``group`` lets the sink acknowledge a whole batch through
    :meth:`MqttAdapter.ack_many`.
    """

    __slots__ = ("adapter", "mid", "qos", "generation")

    def __init__(self, adapter: MqttAdapter, mid: int, qos: int, generation: int) -> None:
        self.adapter, self.mid, self.qos, self.generation = adapter, mid, qos, generation

    def __call__(self) -> None:
        self.adapter._ack(self.mid, self.qos, self.generation)

    @property
    def group(self) -> MqttAdapter:
        return self.adapter


__all__ = ["MqttAdapter"]
