# SPDX-License-Identifier: AGPL-3.0-or-later
"""paho's MQTT client, reading the socket through a buffer: many packets per wake-up.

paho 2.x reads every packet with three ``recv`` calls (the command byte, the
remaining length byte by byte, then the body), and a subscriber that
acknowledges by hand (``manual_ack``, as the ingestion workers do) handles
**one packet per turn of its network loop**, each turn a ``select`` and a
keep-alive check. At thousands of single-reading messages a second those
calls were a large share of a worker's CPU, on cores it shares with the
broker, PostgreSQL and the devices' publisher (``bench/ingest.py``).

:class:`BufferedClient` changes only how bytes come off the socket: one
``recv`` of up to 64 KiB fills a buffer that paho's own packet reader
consumes, and after paho's read each turn goes on through every packet
already buffered. It never reads the socket again in that second pass, so a
turn is bounded by what one ``recv`` returned and the loop gets back to its
writes (PUBACKs) and keep-alive; a packet cut at the buffer's end stays in
paho's partial-packet state and is completed when the socket is readable
again, as paho does for any short read. Protocol handling, TLS, reconnects
and callbacks are paho's, unchanged; a new socket (reconnect) starts with an
empty buffer.

Writing, :meth:`BufferedClient.burst` lets a publisher queue many messages
and wake paho's network thread once (``publish`` writes to its wake-up
socket and hands it the GIL per message), and
:meth:`BufferedClient.puback_many` acknowledges a stored batch as
one queued write (one ``send``, one wake-up of the network thread) where
``Client.ack`` queues, wakes and sends once per message.

Receiving, a message goes straight to ``on_message`` when no per-topic
callback (``message_callback_add``) is registered: paho looks the topic up
in its callback tree for every message, and that look-up builds a recursive
closure — a reference cycle of six objects per message that only the cyclic
garbage collector frees. At 1,000 messages a second those cycles made a
worker's collections free ~20,000 objects each and stop every thread for
20–190 ms (a fire alarm waiting behind them; ``twin.gc_pauses``).
"""
from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterable, Iterator
from typing import Any

import paho.mqtt.client as mqtt

READ_SIZE = 65536
_PUBACK = struct.Struct("!BBH")     # MQTT 5 §3.4.2.1: reason code and properties may be omitted on success


class BufferedClient(mqtt.Client):
    """A ``paho.mqtt.client.Client`` with buffered socket reads (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_buffer = b""
        self._read_pos = 0
        self._read_sock: object = None
        self._buffered_only = False
        #: ``recv`` calls on the socket (for tests and benchmarks).
        self.socket_reads = 0

    def buffered_bytes(self) -> int:
        """Bytes read off the socket that paho has not consumed yet."""
        return len(self._read_buffer) - self._read_pos

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._sock is not self._read_sock:          # a new connection: nothing of the old one is valid
            self._read_sock, self._read_buffer, self._read_pos = self._sock, b"", 0
        if self._read_pos >= len(self._read_buffer):
            if self._buffered_only:
                raise BlockingIOError      # paho keeps the partial packet and waits for the socket
            self.socket_reads += 1
            data = super()._sock_recv(max(bufsize, READ_SIZE))
            if len(data) <= bufsize:       # all of it wanted (or end of stream: b"")
                return data
            self._read_buffer, self._read_pos = data, 0
        start = self._read_pos
        end = min(start + bufsize, len(self._read_buffer))
        self._read_pos = end
        return self._read_buffer[start:end]

    def puback_many(self, mids: Iterable[int]) -> mqtt.MQTTErrorCode:
        """Acknowledge these QoS 1 messages (``manual_ack``) in one queued write, in this order.

        The same bytes as ``ack(mid, 1)`` for each (``PUBACK``, remaining
        length 2, the packet id), joined, so the network thread wakes and
        calls ``send`` once for the batch.
        """
        packet = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
        if not packet:
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        return self._packet_queue(mqtt.PUBACK, packet, 0, 0)

    @contextlib.contextmanager
    def burst(self) -> Iterator[None]:
        """Publish several messages, waking the network thread once at the end instead of per message.

        While the block runs, ``publish`` only queues (paho writes a byte to
        its socket pair per packet otherwise: a syscall, and a thread that
        wakes to take the GIL). Do not wait for acknowledgements inside the
        block: nothing is sent until it ends. Only for ``loop_start`` clients.
        """
        wake = getattr(self, "_sockpairW", None)
        if wake is None or self._thread is None:
            yield
            return
        self._sockpairW = None
        try:
            yield
        finally:
            self._sockpairW = wake
            with contextlib.suppress(BlockingIOError):
                wake.send(b"0")

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        if self._on_message_filtered._root._children:     # per-topic callbacks: paho's own dispatch
            super()._handle_on_message(message)
            return
        with self._callback_mutex:
            on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:                        # paho's handling, unchanged
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        self._buffered_only = True
        try:
            while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None and self.buffered_bytes():
                rc = super().loop_read(1)
        finally:
            self._buffered_only = False
        return rc


__all__ = ["BufferedClient", "READ_SIZE"]
