# SPDX-License-Identifier: AGPL-3.0-or-later
"""Long-running commands stop on SIGTERM at once, and a second signal cannot hang them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection

from twin.shutdown import stop_on_signals


@pytest.fixture
def restored_handlers():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_second_signal_while_the_event_is_busy_returns_at_once_instead_of_deadlocking(restored_handlers):
    stop = threading.Event()
    stop_on_signals(stop)
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.wait(5)
    # What hung `twin simulate`: a signal landing while this thread holds the event's
    # (non-re-entrant) lock. The handler must not touch it a second time.
    with stop._cond:                       # noqa: SLF001 — the lock Event.set takes
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)                   # the handler runs here, in this thread
    assert stop.is_set()


def test_a_function_is_called_once_however_many_signals_arrive(restored_handlers):
    calls = []
    stop_on_signals(lambda: calls.append(1))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
        os.kill(os.getpid(), sig)
        time.sleep(0.01)
    assert calls == [1]


@pytest.mark.django_db
def test_the_overdue_check_loop_stops_within_seconds_of_sigterm_not_after_its_interval():
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "LIVE_ANNOUNCER": ""}
    process = subprocess.Popen([sys.executable, "-m", "twin.cli", "check-overdue", "--interval", "300"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()          # the first round is done: it now waits 300 s
        assert "newly overdue" in line, line
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
