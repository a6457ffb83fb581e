# SPDX-License-Identifier: AGPL-3.0-or-later
"""The sink's cheap paths under load: liveness written only when it says something new, and
batches flushed from the arrival of their first message (no database, no broker needed)."""
from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime, timedelta, timezone

from ingestion.config import BatchConfig
from ingestion.sink import Delivery, Liveness, Sink

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)


def test_liveness_is_rewritten_when_it_moved_by_the_resolution_or_the_status_changed_and_at_first_contact():
    liveness = Liveness(resolution_s=5)
    assert liveness.due({1: T0, 2: T0}, {2: "active"}) == {1: T0, 2: T0}          # first contact
    liveness.remember({1: T0, 2: T0}, {2: "active"})

    soon, later = T0 + timedelta(seconds=2), T0 + timedelta(seconds=5)
    assert liveness.due({1: soon, 2: soon}, {2: "active"}) == {}                   # nothing new to say
    assert liveness.due({1: later, 2: soon}, {2: "maintenance"}) == {1: later, 2: soon}


def test_liveness_resolution_zero_writes_every_batch():
    liveness = Liveness(resolution_s=0)
    liveness.remember({1: T0}, {})
    assert liveness.due({1: T0}, {}) == {1: T0}


class _Recorder(Sink):
    """A sink whose flush records batch sizes instead of writing (the batching logic alone)."""

    def __init__(self, cfg: BatchConfig) -> None:
        super().__init__(cfg, directory=None)  # type: ignore[arg-type]
        self.batches: list[tuple[int, float]] = []

    def flush(self):
        self.batches.append((len(self._pending), time.monotonic()))
        self._pending, self._pending_readings, self._urgent = [], 0, False


@contextlib.contextmanager
def running(sink: Sink):
    """The sink's loop in a thread, settled, for the ``with`` block; stopped after it."""
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(0.05)
    try:
        yield
    finally:
        stop.set()
        thread.join(3)


def _delivery() -> Delivery:
    from ingestion.parsing import reject

    return Delivery(reject("t", b"x", "malformed_json", "test", T0))


def test_a_lone_message_is_flushed_about_the_flush_delay_after_it_arrived():
    sink = _Recorder(BatchConfig(flush_interval_ms=20, max_messages=100))
    with running(sink):
        sent = time.monotonic()
        sink.submit(_delivery())
        deadline = time.monotonic() + 2
        while not sink.batches and time.monotonic() < deadline:
            time.sleep(0.005)
    [(size, flushed)] = sink.batches
    assert size == 1 and 0.015 <= flushed - sent < 0.5


def test_messages_that_arrived_while_the_sink_was_busy_are_flushed_at_once_as_one_batch():
    sink = _Recorder(BatchConfig(flush_interval_ms=300, max_messages=100))
    for _ in range(30):
        sink.submit(_delivery())
    time.sleep(0.35)                    # the sink was committing: these waited longer than the delay
    stop = threading.Event()
    started = time.monotonic()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 2
    while not sink.batches and time.monotonic() < deadline:
        time.sleep(0.001)
    stop.set()
    thread.join(2)
    size, flushed = sink.batches[0]
    assert size == 30 and flushed - started < 0.2   # not another 300 ms


class _Unreachable(_Recorder):
    """A sink whose database is never there (its flush raises what psycopg raises then)."""

    attempts = 0

    def flush(self):
        import psycopg

        self.attempts += 1
        raise psycopg.OperationalError("connection failed: sorry, too many clients already")


def test_an_unreachable_database_is_retried_with_back_off_not_in_a_tight_loop():
    """A spinning retry loop starved paho's network thread until the broker's keep-alive lapsed."""
    sink = _Unreachable(BatchConfig(flush_interval_ms=1, retry_max_s=0.4))
    sink.submit(_delivery())
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(1.5)
    stop.set()
    thread.join(3)
    # 0.2 + 0.4 + 0.4 + … s between attempts: a handful in 1.5 s, never hundreds.
    assert 2 <= sink.attempts <= 6 and not thread.is_alive()


class _Group:
    """An adapter-like acknowledger: records what it was asked to acknowledge, in order."""

    def __init__(self, log: list) -> None:
        self.log = log

    def ack_many(self, acks) -> None:
        self.log.append(("group", [a.n for a in acks]))


class _GroupedAck:
    def __init__(self, group: _Group, n: int) -> None:
        self.group, self.n = group, n

    def __call__(self) -> None:            # pragma: no cover - grouped acks go through ack_many
        raise AssertionError("a grouped ack is sent through its group")


def test_a_batch_is_acknowledged_through_its_adapter_at_once_in_arrival_order_and_plain_acks_one_by_one():
    from ingestion.parsing import reject
    from ingestion.sink import acknowledge

    log: list = []
    group = _Group(log)
    message = reject("t", b"x", "malformed_json", "test", T0)
    batch = [Delivery(message, _GroupedAck(group, n)) for n in range(5)]
    batch.insert(2, Delivery(message, lambda: log.append("plain")))
    acknowledge(batch)
    assert log == ["plain", ("group", [0, 1, 2, 3, 4])]


def test_a_failing_acknowledgement_is_logged_and_does_not_stop_the_others(caplog):
    from ingestion.parsing import reject
    from ingestion.sink import acknowledge

    done: list[int] = []

    def broken() -> None:
        raise RuntimeError("socket gone")

    message = reject("t", b"x", "malformed_json", "test", T0)
    acknowledge([Delivery(message, broken), Delivery(message, lambda: done.append(1))])
    assert done == [1]
    assert "acknowledgement failed" in caplog.text


def _parsed(stream: str) -> Delivery:
    from ingestion.parsing import ParsedMessage

    return Delivery(ParsedMessage(topic=f"hue/sensor/d1/{stream}", payload=b"{}", received_at=T0, city="hue",
                                  kind="sensor", device_id="d1", stream=stream, times=(), values=()))


def test_an_alert_flushes_its_batch_at_once_instead_of_waiting_for_the_flush_delay():
    """A fire alarm must not wait the flush delay for company (the latency goal of issue 5)."""
    sink = _Recorder(BatchConfig(flush_interval_ms=2000, max_messages=100))
    with running(sink):
        sink.submit(_parsed("air"))
        sink.submit(_parsed("air"))
        time.sleep(0.1)
        assert sink.batches == []                       # ordinary readings wait for the delay
        sent = time.monotonic()
        sink.submit(_parsed("alert"))
        deadline = time.monotonic() + 3
        while not sink.batches and time.monotonic() < deadline:
            time.sleep(0.002)
        sink.submit(_parsed("air"))
        time.sleep(0.1)
    (size, flushed), *rest = sink.batches
    assert size == 3 and flushed - sent < 0.5       # the alert took the waiting readings with it
    assert rest == [] or rest[0][1] - flushed >= 0.09  # and the next reading waits again


def _the_one_by_one_order(readings):
    """What commit() stored before it was vectorised: sorted by (feature, time), the first of each repeat."""
    rows, seen, latest, previous = [], {}, {}, None
    for reading in sorted(readings, key=lambda r: (r.feature_id, r.time)):
        if (reading.feature_id, reading.time) == previous:
            continue
        previous = (reading.feature_id, reading.time)
        rows.append(reading)
        seen[reading.feature_id] = reading.time
        latest[reading.feature_id] = reading
    return rows, seen, latest


def test_a_batch_is_stored_in_feature_and_time_order_with_each_repeat_once():
    import random

    from ingestion.messages import Reading
    from ingestion.sink import _unique_in_order

    rnd = random.Random(3)
    for case in range(300):
        readings = []
        for message in range(rnd.randint(1, 12)):
            fid, start = rnd.randint(1, 4), rnd.randint(0, 30)
            steps = sorted(rnd.sample(range(40), rnd.randint(1, 8))) if case % 3 else rnd.sample(range(40), 5)
            readings += [Reading(fid, "d", "sensor", "air", T0 + timedelta(seconds=start + s), {"n": message}, None,
                                 None, "hue", f"m{message}:{i}") for i, s in enumerate(steps)]
        rows, seen, latest = _unique_in_order(readings)
        assert (rows, seen, latest) == _the_one_by_one_order(readings)
        assert all(a is b for a, b in zip(rows, _the_one_by_one_order(readings)[0]))   # the first arrival of a repeat
