# SPDX-License-Identifier: AGPL-3.0-or-later
"""One client's outbox: order, coalescing, bounds (a real asyncio loop, a collecting send)."""
from __future__ import annotations

import asyncio

from ingestion.live.filters import LiveMessage
from ingestion.live.outbox import Outbox


def feature(fid: str, status: str) -> LiveMessage:
    return LiveMessage(kind="feature", text=f"{fid}:{status}", layer="l", key=("f", "l", fid))


def event(n: int) -> LiveMessage:
    return LiveMessage(kind="event", text=f"event {n}")


def collecting(sent: list[str], window_s: float, max_pending: int = 100) -> Outbox:
    """An outbox whose send appends to ``sent`` (call inside the running loop)."""
    async def send(text: str) -> None:
        sent.append(text)

    return Outbox(send, window_s=window_s, max_pending=max_pending)


async def _drain(outbox: Outbox, sent: list[str], until: int, timeout: float = 5.0) -> None:
    task = asyncio.create_task(outbox.run())
    try:
        async with asyncio.timeout(timeout):
            while len(sent) < until:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)       # and nothing more arrives
    finally:
        task.cancel()


def test_events_go_out_ahead_of_feature_updates_waiting_in_the_same_outbox():
    sent: list[str] = []

    async def scenario() -> None:
        async def send(text: str) -> None:
            sent.append(text)

        outbox = Outbox(send, window_s=0.1, max_pending=100)
        for n in range(3):
            outbox.put(feature(f"d{n}", "active"))
        outbox.put(event(1))
        outbox.put(event(2))
        await _drain(outbox, sent, 5)

    asyncio.run(scenario())
    assert sent == ["event 1", "event 2", "d0:active", "d1:active", "d2:active"]


def test_updates_of_one_feature_within_the_window_collapse_to_the_latest():
    sent: list[str] = []

    async def scenario() -> None:
        outbox = collecting(sent, window_s=0.3)
        task = asyncio.create_task(outbox.run())
        outbox.put(feature("d0", "maintenance"))
        await asyncio.sleep(0.05)
        for status in ("active", "inactive", "offline"):
            outbox.put(feature("d0", status))
        outbox.put(feature("d1", "active"))         # another feature is not held back by d0's window
        await asyncio.sleep(0.05)
        assert sent == ["d0:maintenance", "d1:active"]
        await asyncio.sleep(0.4)
        task.cancel()

    asyncio.run(scenario())
    assert sent == ["d0:maintenance", "d1:active", "d0:offline"]


def test_a_client_too_far_behind_is_reported_but_a_pending_feature_can_still_be_replaced():
    async def scenario() -> tuple[list[bool], bool, bool]:
        async def send(text: str) -> None:
            return None

        outbox = Outbox(send, window_s=0.1, max_pending=3)     # never run: the client reads nothing
        accepted = [outbox.put(feature(f"d{n}", "active")) for n in range(3)]
        return accepted, outbox.put(event(1)), outbox.put(feature("d0", "inactive"))

    accepted, new_event, replacement = asyncio.run(scenario())
    assert accepted == [True, True, True]
    assert (new_event, replacement) == (False, True)


def test_a_status_change_replacing_a_waiting_reading_keeps_its_values():
    """The map colours a sensor by its latest values: a status-only update must not wipe them."""
    import json

    sent: list[str] = []
    reading = {"type": "feature", "layer": "l", "id": "d0", "status": "active", "values": {"pm25": 80.5},
               "observed_at": "2026-11-24T17:00:00+00:00"}
    status = {"type": "feature", "layer": "l", "id": "d0", "status": "offline"}

    async def scenario() -> None:
        outbox = collecting(sent, window_s=0.3)
        task = asyncio.create_task(outbox.run())
        outbox.put(feature("d0", "maintenance"))
        await asyncio.sleep(0.05)
        outbox.put(LiveMessage(kind="feature", text=json.dumps(reading), layer="l", key=("f", "l", "d0")))
        outbox.put(LiveMessage(kind="feature", text=json.dumps(status), layer="l", key=("f", "l", "d0")))
        await asyncio.sleep(0.45)
        task.cancel()

    asyncio.run(scenario())
    assert sent[0] == "d0:maintenance" and len(sent) == 2
    assert json.loads(sent[1]) == {**status, "values": {"pm25": 80.5}, "observed_at": "2026-11-24T17:00:00+00:00"}
