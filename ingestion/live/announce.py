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
from collections.abc import Iterable

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
            publisher.publish(feature_topic(root, state.city, state.layer, state.external_id), dumps(state.message()))


def reset_memory() -> None:
    with _SeenMemory.lock:
        _SeenMemory.announced.clear()


__all__ = ["event_changed", "features_changed", "reset_memory"]
