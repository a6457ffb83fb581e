# SPDX-License-Identifier: AGPL-3.0-or-later
"""The simulator end to end: a real ingest worker stores every simulated reading, and the
fire alarm becomes a critical event once the rules run (real Mosquitto, real PostGIS).

Workers run in threads with their own connections, so the fleet is registered
*committed* (``in_thread``) and removed afterwards, under a unique topic root,
layer slugs and device ids, as the other MQTT tests do.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from django.conf import settings
from django.db import connection

from ingestion.models import DeadLetter, RuleState
from ingestion.rules.engine import configured, evaluate, load_rules
from ingestion.simulator.config import parse_fleet
from ingestion.simulator.fleet import RegisteredFleet, register_fleet
from ingestion.simulator.plan import make_plan
from ingestion.simulator.publisher import run_fleet
from tests.ingestion.mqtt_support import (broker, in_thread, start_worker, unique_name, wait_for,  # noqa: F401
                                          worker_config)
from tests.ingestion.simulator_support import FLEET_TOML, fleet_config, fleet_data
from twin.models import EventStatus, Feature, GeoEvent
from twin.services import ensure_partitions

pytestmark = pytest.mark.django_db

RULES_TOML = settings.CITY_FIXTURES_DIR / "hue" / "rules.toml"


def _feature_ids(fleet: RegisteredFleet) -> list[int]:
    return list(Feature.objects.filter(layer__in=fleet.layers.values()).values_list("id", flat=True))


def _register(cfg) -> RegisteredFleet:
    # Partitions first: attaching one locks the DEFAULT partition, which would
    # wait for the test's open read transaction (see mqtt_support).
    now = datetime.now(timezone.utc)
    ensure_partitions(now - timedelta(days=1), now + timedelta(days=1))
    return register_fleet(cfg)


def _remove(fleet: RegisteredFleet, root: str) -> None:
    ids = _feature_ids(fleet)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM twin_observation WHERE feature_id = ANY(%s)", [ids])
    RuleState.objects.filter(subject__in=[str(i) for i in ids]).delete()
    GeoEvent.objects.filter(source_feature_id__in=ids).delete()
    DeadLetter.objects.filter(topic__startswith=root + "/").delete()
    for layer in fleet.layers.values():
        Feature.objects.filter(layer=layer).delete()
        layer.delete()


@pytest.fixture
def committed_fleet(db) -> Iterator:
    """Register (committed) a small fleet built by the test; removed afterwards."""
    made = []

    def register(cfg) -> RegisteredFleet:
        fleet = in_thread(_register, cfg)
        made.append((fleet, cfg.topic_root))
        return fleet

    yield register
    for fleet, root in made:
        in_thread(_remove, fleet, root)


def _stored(ids: list[int]) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM twin_observation WHERE feature_id = ANY(%s)", [ids])
        return cursor.fetchone()[0]


def test_every_simulated_reading_is_stored_by_an_ingest_worker(committed_fleet, start_worker):
    cfg = fleet_config(air=3, water=2, fire=3)
    fleet = committed_fleet(cfg)
    start_worker(worker_config(cfg.topic_root, unique_name()))
    plan = make_plan(cfg, fleet.devices, settings.MQTT_URL, rate=100, batch=4, qos=1, duration=2.0)

    stats = run_fleet(plan)

    assert stats.acked == stats.messages > 150
    ids = _feature_ids(fleet)
    wait_for(lambda: _stored(ids) >= stats.readings, what=f"{stats.readings} stored readings")
    assert _stored(ids) == stats.readings
    assert not DeadLetter.objects.filter(topic__startswith=cfg.topic_root + "/").exists()


def test_the_simulated_fire_alarm_opens_a_critical_fire_event_and_its_reset_resolves_it(committed_fleet,
                                                                                         start_worker):
    # One panel, alarmed from its first message, reset 1.5 simulated hours (1.5 s) later.
    data, _ = fleet_data(air=0, water=0, fire=1, hour_s=1.0)
    data["fire"].update(start_alarmed=1, reset_after_h=1.5, alarm_rate_per_h=0)
    cfg = parse_fleet(data, base_dir=FLEET_TOML.parent)
    fleet = committed_fleet(cfg)
    panel = Feature.objects.get(layer=fleet.layers["fire"])
    with configured(load_rules(RULES_TOML), strict=False):
        start_worker(worker_config(cfg.topic_root, unique_name()), rules=evaluate)
        stats = run_fleet(make_plan(cfg, fleet.devices, settings.MQTT_URL, rate=5, qos=1, duration=3.0))
        assert stats.topics["alert"] == 2, stats.topics        # the alarm and its reset
        wait_for(lambda: _stored([panel.pk]) == stats.readings, what="the panel's readings")
        event = wait_for(lambda: GeoEvent.objects.filter(source_feature=panel, status=EventStatus.RESOLVED).first(),
                         what="the fire event, resolved by the reset")
    assert (event.category, event.severity) == ("fire", 5)
    assert event.agency.code == "hue-pccc-cnch"
    assert GeoEvent.objects.filter(source_feature=panel).count() == 1


def test_the_simulator_waits_for_a_worker_online_and_refuses_clearly_when_none_comes(broker, start_worker):
    """The demo race: on a fresh broker nothing may be published before a worker subscribed."""
    from ingestion.simulator.readiness import IngestNotReady, wait_for_ingest

    host, port = broker
    root = f"{unique_name('t')}/city"
    with pytest.raises(IngestNotReady, match="no ingestion worker said online .* `twin run-ingest` running"):
        wait_for_ingest(host, port, root, "hue", 0.5)

    name = unique_name()
    start_worker(worker_config(root, name), ready=False)
    assert wait_for_ingest(host, port, root, "hue", 20) == {name}
