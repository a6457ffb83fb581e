# SPDX-License-Identifier: AGPL-3.0-or-later
"""Stopping long-running commands on SIGTERM / SIGINT, safely when the signal comes twice.

A handler that calls ``threading.Event.set`` directly can deadlock: the event's
lock is not re-entrant, and a second signal (a supervisor's TERM after a
``pkill``, Ctrl-C pressed twice) that lands while the first handler is inside
``set`` waits on that lock forever, in the same thread — ``twin simulate``
hung exactly so when the demo was stopped. The handler here acts once and
returns at once on every later signal, without taking any lock.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def stop_on_signals(stop: threading.Event | Callable[[], None],
                    signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """On the first of ``signals``: set the event (or call the function); ignore the ones after."""
    act = stop.set if isinstance(stop, threading.Event) else stop
    fired: list[bool] = []

    def handler(signum, frame) -> None:
        if fired:
            return
        fired.append(True)          # list.append: atomic, takes no lock the interrupted code may hold
        act()

    for sig in signals:
        signal.signal(sig, handler)


__all__ = ["stop_on_signals"]
