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


def _moved_due(fid: int, lon: float, lat: float, now: float, interval: float) -> bool:
    with _SeenMemory.lock:
        previous = _SeenMemory.positions.get(fid)
        if previous is not None and ((previous[0], previous[1]) == (lon, lat) or now - previous[2] < interval):
            return False
        _SeenMemory.positions[fid] = (lon, lat, now)
        return True


def features_moved(positions: Mapping[int, tuple[float, float, datetime]]) -> None:
    """Publish the newest committed position of moving features (boats, trackers).

    ``positions``: feature id → (lon, lat, time) of its newest reading in a
    committed batch. A feature is announced when its position changed, at
    most once per ``position_interval_s`` (the map animates between fixes);
    the message is the feature's state message with the reported point as
    its geometry and ``position_at``, so viewport filtering uses where the
    boat is now.
    """
    publisher = get_publisher()
    interval, root = publisher.cfg.position_interval_s, publisher.cfg.topic_root
    now = time.monotonic()
    due = {fid: p for fid, p in positions.items() if _moved_due(fid, p[0], p[1], now, interval)}
    for state in feature_states(due):
        lon, lat, at = due[state.fid]
        message = state.message()
        message["geometry"] = {"type": "Point", "coordinates": [lon, lat]}
        message["position_at"] = at.isoformat()
        publisher.publish(feature_topic(root, state.city, state.layer, state.external_id), dumps(message))
        with _SeenMemory.lock:   # it carries status and last_seen too: no separate liveness message
            _SeenMemory.announced[state.fid] = (state.status, now)


def reset_memory() -> None:
    with _SeenMemory.lock:
        _SeenMemory.announced.clear()
        _SeenMemory.positions.clear()


__all__ = ["event_changed", "features_changed", "features_moved", "reset_memory"]
