# SPDX-License-Identifier: AGPL-3.0-or-later
"""Scale-out: workers on one MQTT 5 shared subscription split a stream, no loss, no duplicates."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from tests.ingestion.mqtt_support import (air, base_time, broker, devices, publisher, start_worker,  # noqa: F401
                                          unique_name, wait_for, worker_config)

pytestmark = pytest.mark.django_db

READINGS = 2000


def test_two_workers_on_a_shared_subscription_split_a_stream_with_no_duplicates_and_no_loss(
        devices, start_worker, publisher):
    group = unique_name("group")
    workers = [start_worker(worker_config(devices.root, unique_name(), group=group)) for _ in range(2)]
    moment = base_time()
    expected = set()
    for i in range(READINGS):
        sensor = i % 10
        when = moment + timedelta(milliseconds=i)
        expected.add((devices.sensor(sensor), when))
        publisher.publish(devices.topic("sensor", f"s{sensor}", "air"), air(when, pm25=i % 300))
    publisher.wait(60)

    wait_for(lambda: len(devices.observations()) >= READINGS, timeout=60, what=f"{READINGS} readings")
    rows = devices.observations()
    assert len(rows) == READINGS and set(rows) == expected          # no loss, no extra
    assert not Counter(rows) - Counter(set(rows))                  # and no duplicate
    shares = [worker.sink.totals.readings for worker in workers]
    assert sum(shares) == READINGS                                 # every message went to exactly one worker
    assert min(shares) > READINGS * 0.2, f"the stream was not split: {shares}"
