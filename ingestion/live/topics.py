# SPDX-License-Identifier: AGPL-3.0-or-later
"""The live topics: where committed changes are republished, and what the hub subscribes to.

One table for both directions, like ``ingestion/topics.py`` (devices → us);
these are us → everyone::

    {root}/{city}/events/{event_id}                         an event was created, updated or moved on
    {root}/{city}/features/{layer}/{external_id}/state      a feature's status or last_seen changed

The ``events`` and ``features`` levels sit where device topics carry a device
kind, so the ingestion subscriptions (``{root}/+/sensor/+/+`` ...) never see
them. An external id that is not a valid topic level (``/``, ``+``, ``#``)
is percent-encoded; the payload always carries the true id.

>>> event_topic("city", "hue", 42)
'city/hue/events/42'
>>> feature_topic("city", "hue", "hue-sensors", "aq/12")
'city/hue/features/hue-sensors/aq%2F12/state'
>>> subscriptions("city")
['city/+/events/+', 'city/+/features/+/+/state']
>>> topic_kind("city", "city/hue/features/hue-sensors/aq-1/state"), topic_kind("city", "city/hue/events/7")
(('feature', 'hue-sensors'), ('event', None))
"""
from __future__ import annotations

from urllib.parse import quote

from ingestion.topics import valid_topic_level

LIVE_TOPICS: tuple[str, ...] = (
    "{root}/{city}/events/{event_id}",
    "{root}/{city}/features/{layer}/{external_id}/state",
)


def _level(value: str) -> str:
    return value if valid_topic_level(value) else quote(value, safe="") or "%00"


def event_topic(root: str, city: str, event_id: int) -> str:
    return LIVE_TOPICS[0].format(root=root, city=_level(city), event_id=int(event_id))


def feature_topic(root: str, city: str, layer: str, external_id: str) -> str:
    return LIVE_TOPICS[1].format(root=root, city=_level(city), layer=_level(layer),
                                 external_id=_level(external_id))


def subscriptions(root: str, city: str = "+") -> list[str]:
    """Topic filters covering every live topic (``+`` for every free level)."""
    filters = []
    for pattern in LIVE_TOPICS:
        levels = [root if p == "{root}" else city if p == "{city}" else "+" if p.startswith("{") else p
                  for p in pattern.split("/")]
        filters.append("/".join(levels))
    return filters


def topic_kind(root: str, topic: str) -> tuple[str, str | None] | None:
    """``("event", None)`` or ``("feature", layer)`` for a live topic, else ``None``.

    Lets the hub skip a message no client wants before parsing its JSON.
    """
    if not topic.startswith(root + "/"):
        return None
    levels = topic[len(root) + 1:].split("/")
    if len(levels) == 3 and levels[1] == "events":
        return "event", None
    if len(levels) == 5 and levels[1] == "features" and levels[4] == "state":
        return "feature", levels[2]
    return None


__all__ = ["LIVE_TOPICS", "event_topic", "feature_topic", "subscriptions", "topic_kind"]
