# SPDX-License-Identifier: AGPL-3.0-or-later
"""Stopping long-running commands on SIGTERM / SIGINT, safely when the signal comes twice.

A handler that calls ``threading.Event.set`` directly can deadlock: the event's
lock is not re-entrant, and a second signal (a supervisor's TERM after a
``pkill``, Ctrl-C pressed twice) that lands while the first handler is inside
``set`` waits on that lock forever, in the same thread — ``twin simulate``
hung exactly so when the demo was stopped. The handler here acts once and
has the later signals ignored, without taking any lock.

Ignored (``SIG_IGN``), not merely skipped by the handler: when the process
ends, Python puts its own handlers back to the default action, and a second
TERM landing then killed a process that was already exiting cleanly (exit
status -15 instead of 0; seen on a loaded machine, 24 Nov).
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def stop_on_signals(stop: threading.Event | Callable[[], None],
                    signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """On the first of ``signals``: set the event (or call the function); ignore the ones after.

    Call from the main thread (``signal.signal``'s rule).
    """
    act = stop.set if isinstance(stop, threading.Event) else stop
    fired: list[bool] = []

    def handler(signum, frame) -> None:
        if fired:
            return
        fired.append(True)          # list.append: atomic, takes no lock the interrupted code may hold
        for sig in signals:         # later ones never reach Python again, even during its shutdown
            signal.signal(sig, signal.SIG_IGN)
        act()

    for sig in signals:
        signal.signal(sig, handler)


__all__ = ["stop_on_signals"]
