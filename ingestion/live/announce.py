# SPDX-License-Identifier: AGPL-3.0-or-later
"""What the domain services call after a commit: republish the change on the live topics.

``twin.services.announce`` registers these with ``transaction.on_commit``
(``settings.LIVE_ANNOUNCER`` names this module), so they run only for
changes that were committed, in the thread that committed them, after the
commit. They never raise into the writer (``on_commit(robust=True)``), and
they cost one small query plus a non-blocking publish.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import connection

from ingestion.live.payloads import dumps, event_city, event_message, feature_states, load_event
from ingestion.live.publisher import get_publisher
from ingestion.live.topics import event_topic, feature_topic

logger = logging.getLogger(__name__)


def event_changed(event_id: int, op: str) -> None:
    """Publish the committed state of event ``event_id`` (``op``: created, updated, transition)."""
    event = load_event(event_id)
    if event is None:   # deleted by a later transaction before this ran: nothing to show
        logger.info("event %s is gone before its %s could be announced", event_id, op)
        return
    publisher = get_publisher()
    city = event_city(event)
    publisher.publish(event_topic(publisher.cfg.topic_root, city, event.pk), dumps(event_message(event, op, city)))


class _SeenMemory:
    """Per process: the status and time each feature was last announced.

    A status change is always announced; a change of ``last_seen`` alone at
    most every ``seen_interval_s``, so a thousand devices reporting every
    second do not become a thousand map updates a second. Cleared by
    :func:`reset_memory`.
    """

    lock = threading.Lock()
    announced: dict[int, tuple[str, float]] = {}
    # Moving features: the position last announced (lon, lat, when announced).
    positions: dict[int, tuple[float, float, float]] = {}


def _due(fid: int, status: str, now: float, interval: float) -> bool:
    with _SeenMemory.lock:
        previous = _SeenMemory.announced.get(fid)
        if previous is not None and previous[0] == status and now - previous[1] < interval:
            return False
        _SeenMemory.announced[fid] = (status, now)
        return True


def features_changed(feature_ids: Iterable[int]) -> None:
    """Publish the committed state of these features (status always; liveness throttled)."""
    publisher = get_publisher()
    interval, root = publisher.cfg.seen_interval_s, publisher.cfg.topic_root
    now = time.monotonic()
    for state in feature_states(feature_ids):
        if _due(state.fid, state.status, now, interval):
            message = state.message()
            with _SeenMemory.lock:
                moved = _SeenMemory.positions.get(state.fid)
            if moved is not None:    # a moving feature stays where it was last seen, not where it was registered
                message["geometry"] = {"type": "Point", "coordinates": [moved[0], moved[1]]}
            publisher.publish(feature_topic(root, state.city, state.layer, state.external_id), dumps(message))


# A feature's newest reading of a batch: (lon, lat, time, values); lon/lat None for a fixed
# device, values None for a position alone.
Fix = tuple[float | None, float | None, datetime, Mapping[str, Any] | None]
MAX_VALUE_KEYS = 24
MAX_VALUE_TEXT = 64


class _Readings:
    """Per process: when each feature's reading was last announced, and what waits for its turn.

    A feature's reading goes out at most every ``position_interval_s``; a newer
    one inside the interval waits in ``pending`` (the newest replaces it) and
    the process's flusher thread (:func:`_flusher`) sends what is due when its
    interval ends, so the map always ends on the latest value, not the first
    of a burst.
    """

    sent: dict[int, float] = {}
    pending: dict[int, Fix] = {}
    due_at: float | None = None          # monotonic time of the next flush (guarded by _SeenMemory.lock)
    wake = threading.Event()
    flusher: threading.Thread | None = None


def map_values(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The members the map colours by: numbers, booleans and short texts, at most 24 (no nested data)."""
    if not values:
        return None
    found: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= MAX_VALUE_TEXT):
            found[key] = value
            if len(found) >= MAX_VALUE_KEYS:
                break
    return found or None


def features_read(readings: Mapping[int, Any]) -> None:
    """Publish the newest committed reading of each feature of a batch: its values and any position.

    ``readings``: feature id → the newest reading of a committed batch (an
    :class:`ingestion.messages.Reading`; ``lon``/``lat``/``time``/``values``/
    ``stream`` are read). Device status readings are left to
    :func:`features_changed`. A feature is announced at most once per
    ``position_interval_s`` (the latest reading then); the message is its
    state message plus ``values``/``observed_at`` and, for a moving feature,
    the reported point and ``position_at``. The work is per feature of the
    batch, never per message.
    """
    _announce({fid: (r.lon, r.lat, r.time, r.values) for fid, r in readings.items() if r.stream != "status"})


def features_moved(positions: Mapping[int, tuple[float, float, datetime]]) -> None:
    """Publish the newest committed position of moving features (boats, trackers), without values.

    ``positions``: feature id → (lon, lat, time) of its newest reading in a
    committed batch. Same coalescing as :func:`features_read`; an unchanged
    position is never republished.
    """
    _announce({fid: (lon, lat, at, None) for fid, (lon, lat, at) in positions.items()})


def _announce(fixes: Mapping[int, Fix]) -> None:
    publisher = get_publisher()
    interval, now = publisher.cfg.position_interval_s, time.monotonic()
    due: dict[int, Fix] = {}
    with _SeenMemory.lock:
        for fid, fix in fixes.items():
            last = _Readings.sent.get(fid)
            if last is None or now - last >= interval:
                _Readings.sent[fid] = now
                _Readings.pending.pop(fid, None)
                due[fid] = fix
            else:
                _Readings.pending[fid] = fix
        _schedule(interval)
    _publish_fixes(publisher, due, now)


def _schedule(interval: float) -> None:
    """Tell the flusher when the first waiting reading is due (called with the lock held)."""
    if not _Readings.pending:
        return
    first = min(_Readings.sent.get(fid, 0.0) for fid in _Readings.pending) + interval + 0.01
    if _Readings.due_at is None or first < _Readings.due_at:
        _Readings.due_at = first
        _Readings.wake.set()
    if _Readings.flusher is None or not _Readings.flusher.is_alive():
        _Readings.flusher = threading.Thread(target=_flusher, name="live-readings-flusher", daemon=True)
        _Readings.flusher.start()


def _flusher() -> None:
    """The process's one thread sending waiting readings when they are due.

    Why one long-lived thread and not a timer per flush: a ``threading.Timer``
    a second was a new thread and a new PostgreSQL connection a second per
    worker (connection set-up is milliseconds of the database's CPU). The
    connection is kept while readings keep waiting and given back as soon as
    none waits, so an idle process (or a test database being dropped) holds none.
    """
    while True:
        _Readings.wake.clear()
        with _SeenMemory.lock:
            due = _Readings.due_at
        left = None if due is None else due - time.monotonic()
        if left is None or left > 0:
            _Readings.wake.wait(left)
            continue
        with _SeenMemory.lock:
            _Readings.due_at = None
        _flush_pending()
        with _SeenMemory.lock:
            idle = _Readings.due_at is None
        if idle:
            connection.close()


def _flush_pending() -> None:
    """Send the waiting readings whose interval has passed (the flusher's thread, its own connection)."""
    try:
        publisher = get_publisher()
        interval, now = publisher.cfg.position_interval_s, time.monotonic()
        with _SeenMemory.lock:
            ready = {fid: fix for fid, fix in _Readings.pending.items()
                     if now - _Readings.sent.get(fid, 0.0) >= interval}
            for fid in ready:
                del _Readings.pending[fid]
                _Readings.sent[fid] = now
            _schedule(interval)
        _publish_fixes(publisher, ready, now)
    except Exception:   # never let the flusher die: the next reading brings the state
        logger.exception("could not announce waiting readings")
        connection.close()     # a broken connection is not reused


def _publish_fixes(publisher, due: Mapping[int, Fix], now: float) -> None:
    root = publisher.cfg.topic_root
    for state in feature_states(due):
        lon, lat, at, raw = due[state.fid]
        values, moving = map_values(raw), lon is not None and lat is not None
        if not values and not moving:
            continue         # a reading with nothing the map shows
        message = state.message()
        with _SeenMemory.lock:
            previous = _SeenMemory.positions.get(state.fid)
            if moving and not values and previous is not None and (previous[0], previous[1]) == (lon, lat):
                continue     # nothing new to show
            if moving:
                _SeenMemory.positions[state.fid] = (lon, lat, now)
            elif previous is not None:
                lon, lat = previous[0], previous[1]
            # It carries status and last_seen too: no separate liveness message.
            _SeenMemory.announced[state.fid] = (state.status, now)
        if lon is not None and lat is not None:
            message["geometry"] = {"type": "Point", "coordinates": [lon, lat]}
        if moving:
            message["position_at"] = at.isoformat()
        if values:
            message["values"] = values
            message["observed_at"] = at.isoformat()
        publisher.publish(feature_topic(root, state.city, state.layer, state.external_id), dumps(message))


def reset_memory() -> None:
    with _SeenMemory.lock:
        _SeenMemory.announced.clear()
        _SeenMemory.positions.clear()
        _Readings.due_at = None
        _Readings.sent.clear()
        _Readings.pending.clear()


__all__ = ["event_changed", "features_changed", "features_moved", "features_read", "map_values", "reset_memory"]
