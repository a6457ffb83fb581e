# SPDX-License-Identifier: AGPL-3.0-or-later
"""Faults in the middle of a stream: the worker, the broker and the database die; nothing is lost or doubled.

Each test makes the fault land while messages are provably in flight (for
instance by holding a row lock the worker's commit needs), so the recovery
path is exercised every run rather than by luck.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from tests.ingestion.mqtt_support import (Publisher, ThrowawayBroker, air, base_time, broker,  # noqa: F401
                                          clear_retained, devices, publisher, retained, start_worker,
                                          unique_name, wait_for, worker_config)

pytestmark = pytest.mark.django_db


def _stream(devices, publisher: Publisher, start: int, count: int) -> set:
    """Publish ``count`` single readings over the ten sensors; return the (feature, time) keys."""
    moment = base_time()
    keys = set()
    for i in range(start, start + count):
        when = moment + timedelta(milliseconds=i)
        keys.add((devices.sensor(i % 10), when))
        publisher.publish(devices.topic("sensor", f"s{i % 10}", "air"), air(when, pm25=i % 100))
    publisher.wait(60)
    return keys


def _conninfo() -> str:
    db = connection.settings_dict
    return psycopg.conninfo.make_conninfo(dbname=db["NAME"], user=db["USER"] or None, password=db["PASSWORD"] or None,
                                          host=db["HOST"] or None, port=db["PORT"] or None)


@contextlib.contextmanager
def rows_locked(feature_ids: list[int]) -> Iterator[psycopg.Connection]:
    """Hold row locks on the features, so a worker's commit waits for us (its first liveness write checks the key)."""
    with psycopg.connect(_conninfo()) as locker:
        locker.execute("SELECT 1 FROM twin_feature WHERE id = ANY(%s) FOR UPDATE", [feature_ids])
        yield locker
        locker.rollback()


def _blocked_backends(locker: psycopg.Connection) -> list[int]:
    """The backends now waiting on a lock, read outside any transaction.

    Not through the test's connection: inside a transaction PostgreSQL keeps
    the first snapshot of ``pg_stat_activity`` it read, so a poll that began
    before the worker blocked would never see it block.
    """
    with psycopg.connect(_conninfo(), autocommit=True) as observer:
        rows = observer.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> ALL(%s) "
            "AND wait_event_type = 'Lock'",
            [[connection.connection.info.backend_pid, locker.info.backend_pid, observer.info.backend_pid]]).fetchall()
    return [row[0] for row in rows]


def test_database_connection_killed_mid_commit_is_retried_without_loss_or_duplicates(
        devices, start_worker, publisher, caplog):
    worker = start_worker(worker_config(devices.root, unique_name(), batch={"max_messages": 20}))
    with rows_locked(devices.feature_ids()) as locker:
        expected = _stream(devices, publisher, 0, 300)
        blocked = wait_for(lambda: _blocked_backends(locker), what="the worker's commit to wait on our lock")
        with connection.cursor() as cursor:        # what a PostgreSQL restart does to the worker's session
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [blocked])
        wait_for(lambda: "database unavailable" in caplog.text, what="the worker to notice and retry")
        assert devices.observations() == []        # nothing committed, so nothing acknowledged
    wait_for(lambda: len(devices.observations()) >= len(expected), what="all readings after the retry")
    rows = devices.observations()
    assert len(rows) == len(expected) and set(rows) == expected
    assert not devices.dead_letters().exists()
    assert worker.sink.totals.readings == len(expected)


def test_broker_killed_and_restarted_mid_stream_loses_no_acknowledged_message_and_stores_none_twice(
        devices, start_worker, tmp_path):
    mosquitto = ThrowawayBroker(tmp_path).start()
    pub = None
    try:
        worker = start_worker(worker_config(devices.root, unique_name(), url=mosquitto.url))
        pub = Publisher(mosquitto.url)
        with rows_locked(devices.feature_ids()):
            expected = _stream(devices, pub, 0, 300)          # acknowledged by the broker
            wait_for(lambda: worker.sink.received >= 300, what="the worker to receive the first 300")
            mosquitto.save()          # the broker's own durability point for what it acknowledged
            mosquitto.kill()          # kill -9 while the worker holds 300 unacknowledged messages
            mosquitto.start()
        # The held commit now completes; its acks belong to a dead connection and
        # are dropped, so the resumed session redelivers all 300 (stored as no-ops).
        wait_for(lambda: worker.adapter.subscribed.is_set(), what="the worker to reconnect")
        expected |= _stream(devices, pub, 300, 300)
        wait_for(lambda: len(devices.observations()) >= len(expected), timeout=40, what="all 600 readings")
        wait_for(lambda: worker.sink.totals.readings >= 900, what="the redelivered 300 to be processed")
        rows = devices.observations()
        assert len(rows) == 600 and set(rows) == expected
    finally:
        if pub is not None:
            pub.close()
        mosquitto.stop()


def _test_database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _run_ingest(tmp_path, name: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "MQTT_URL": settings.MQTT_URL, "LOG_LEVEL": "INFO"}
    log = open(tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "twin.cli", "run-ingest", "--config", str(tmp_path / "ingest.toml"),
                             "--worker-name", name, "--no-rules", *extra], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def test_a_worker_process_killed_mid_stream_loses_nothing_and_stores_nothing_twice(devices, publisher, tmp_path):
    name = unique_name()
    (tmp_path / "ingest.toml").write_text(
        f'[topics]\nroot = "{devices.root}"\n[worker]\nshared_group = "{unique_name("g")}"\n'
        f'[broker]\nsession_expiry_s = 120\nreconnect_min_s = 1\nreconnect_max_s = 2\n'
        f'[batch]\nmax_messages = 10\nflush_interval_ms = 20\n')
    availability = f"{devices.root}/all/ingest/{name}/available"
    worker = _run_ingest(tmp_path, name)
    try:
        wait_for(lambda: retained(availability, timeout=0.5) == b"online", what="the worker process to connect")
        expected = _stream(devices, publisher, 0, 600)
        wait_for(lambda: len(devices.observations()) >= 50, what="the first rows")
        worker.kill()                                   # kill -9: no flush, no acks, no goodbye
        worker.wait(10)
        # The broker publishes the last will once it has noticed the dropped connection: wait for it.
        wait_for(lambda: retained(availability, timeout=0.5) == b"offline", what="the broker to publish the last will")
        expected |= _stream(devices, publisher, 600, 200)   # published while no worker runs
        worker = _run_ingest(tmp_path, name)
        wait_for(lambda: len(devices.observations()) >= len(expected), timeout=40, what="all 800 readings")
        rows = devices.observations()
        assert len(rows) == len(expected) and set(rows) == expected
    finally:
        worker.terminate()
        assert worker.wait(15) == 0, "the worker did not stop cleanly on SIGTERM"
    retire = subprocess.run([sys.executable, "-m", "twin.cli", "run-ingest", "--config", str(tmp_path / "ingest.toml"),
                             "--worker-name", name, "--retire"], capture_output=True, text=True, timeout=90,
                            env={**os.environ, "DATABASE_URL": _test_database_url(), "MQTT_URL": settings.MQTT_URL})
    assert "session ended" in retire.stdout, retire.stdout + retire.stderr
    clear_retained(availability)
