# SPDX-License-Identifier: AGPL-3.0-or-later
"""Live push: committed event and feature-state changes, to MQTT and to WebSocket clients.

The path (``docs/live.md``)::

    twin.services (raise_event / transition_event / mark_devices_seen)
      → transaction.on_commit → announce.py (payload from the committed rows)
      → publisher.py (one paho client per process) → MQTT {root}/{city}/events/...
      → hub.py (one subscriber per web process) → filters.py (viewport, layers)
      → outbox.py (coalescing) → consumers.py (/ws/live)

MQTT is the bus between processes (ingestion workers, web workers): no new
infrastructure, and other systems read the same topics.
"""


def reset() -> None:
    """Stop and forget this process's hub, publisher and liveness memory (tests, shutdown).

    The next use builds them again from the current settings.
    """
    from ingestion.live.announce import reset_memory
    from ingestion.live.hub import reset_hub
    from ingestion.live.payloads import reset_cities
    from ingestion.live.publisher import reset_publisher

    reset_hub()
    reset_publisher()
    reset_memory()
    reset_cities()
