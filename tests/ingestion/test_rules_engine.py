# SPDX-License-Identifier: AGPL-3.0-or-later
"""The rule engine: a registry of plug-ins, configuration as data, one safe entry point for the sink."""
from __future__ import annotations

import doctest
import importlib
import logging

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from ingestion.models import RuleState
from ingestion.rules import base
from ingestion.rules.base import Rule, RuleConfig, registered, rule_class, rule_names
from ingestion.rules.engine import (RulesConfigError, configured, evaluate, get_engine, load_rules, parse_rules,
                                    reset_engine)
from ingestion.rules.episodes import lock_states
from tests.ingestion.rules_support import events_of, make_device, minutes, reading
from twin.models import Agency

RULE_MODULES = ["aqi", "base", "episodes", "engine", "threshold", "air_quality", "offline", "geofence", "fire"]


class Tally(Rule):
    """A test rule counting what it is given."""

    name = "tally"
    seen: list[int] = []

    def evaluate(self, readings, ctx):
        Tally.seen.append(len(readings))


class Broken(Rule):
    name = "broken"

    def evaluate(self, readings, ctx):
        raise RuntimeError("boom")


@pytest.mark.parametrize("module", RULE_MODULES + ["../routing"])
def test_rule_module_doctests_pass(module):
    name = "ingestion.routing" if module == "../routing" else f"ingestion.rules.{module}"
    assert doctest.testmod(importlib.import_module(name)).failed == 0


def test_the_builtin_rules_are_registered_by_the_app():
    assert {"threshold", "air_quality", "offline", "geofence", "fire"} <= set(rule_names())
    assert rule_class("fire").__name__ == "FireRule"


@pytest.mark.django_db
def test_a_registered_rule_runs_and_disappears_after_the_block():
    Tally.seen.clear()
    device = make_device()
    with registered("tally", Tally), configured():
        evaluate([reading(device, minutes(0), {"level_cm": 1}), reading(device, minutes(1), {"level_cm": 2})])
    assert Tally.seen == [2] and "tally" not in rule_names()


@pytest.mark.django_db
def test_a_failing_rule_is_rolled_back_and_logged_without_stopping_the_others(caplog):
    panel = make_device(sensor_type="fire_alarm", unit="state")
    with registered("broken", Broken), configured(strict=False), caplog.at_level(logging.ERROR):
        evaluate([reading(panel, minutes(0), {"alarm": True}, stream="fire")])
    assert "rule broken failed" in caplog.text and "boom" in caplog.text
    assert len(events_of(panel)) == 1


@pytest.mark.django_db
def test_evaluate_with_no_readings_does_nothing(django_assert_num_queries):
    with configured(), django_assert_num_queries(0):
        evaluate([])


@pytest.mark.django_db
def test_the_hue_rules_file_validates_and_names_agencies_that_exist():
    rules = load_rules(settings.CITY_FIXTURES_DIR / "hue" / "rules.toml")
    assert rules.routing.fallback_agency == "hue-ioc"
    named = {rules.routing.fallback_agency, *rules.routing.city_categories.values()}
    assert set(Agency.objects.filter(code__in=named).values_list("code", flat=True)) == named
    assert rules.rules["air_quality"].method == "vn_aqi" and len(rules.rules["threshold"].watches) == 2


def test_the_engine_reads_the_default_citys_rules_file_and_rebuilds_when_the_registry_changes():
    reset_engine()
    engine = get_engine()
    assert engine.settings.source.endswith("hue/rules.toml")
    with registered("tally", Tally):
        assert get_engine() is not engine and "tally" in [r.name for r in get_engine().rules]
    assert "tally" not in [r.name for r in get_engine().rules]


def test_a_missing_rules_file_means_each_rules_defaults(tmp_path):
    rules = load_rules(tmp_path / "none.toml")
    assert rules.source == "(defaults)" and rules.rules["fire"].severity == 5


@pytest.mark.parametrize("data, message", [
    ({"rules": {"telepathy": {}}}, "unknown rule 'telepathy'"),
    ({"rules": {"fire": {"severity": 9}}}, "rules.fire.severity"),
    ({"rules": {"air_quality": {"method": "who"}}}, "rules.air_quality.method"),
    ({"routing": {"chain": ["nowhere"]}}, "routing.chain"),
    ({"alerts": {}}, "alerts"),
])
def test_bad_rules_configuration_is_refused_naming_the_field(data, message):
    with pytest.raises(RulesConfigError) as caught:
        parse_rules(data)
    assert message in str(caught.value) and caught.value.status == 400


def test_a_broken_rules_file_is_refused(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[rules.fire\nseverity = 5", encoding="utf-8")
    with pytest.raises(RulesConfigError, match="cannot read"):
        load_rules(path)


@pytest.mark.django_db
def test_a_second_worker_waits_for_the_first_workers_lock_on_the_same_condition():
    """While one worker holds a condition's state row, another cannot take it (nor insert it twice)."""
    params = connection.get_connection_params()
    dsn = {k: params[k] for k in ("dbname", "user", "host", "port", "password") if params.get(k)}
    with transaction.atomic():
        existing = RuleState.objects.create(rule="fire", subject="held-1")
        lock_states("fire", ["held-1", "new-1"])
        with psycopg.connect(**dsn, autocommit=True) as other:
            other.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("INSERT INTO ingestion_rulestate (rule, subject, state, updated_at) "
                              "VALUES ('fire', 'new-1', '{}', now()) ON CONFLICT DO NOTHING")
    assert existing.pk is not None


class Shadow(Rule):
    name = "shadow"
    config_model = RuleConfig

    def evaluate(self, readings, ctx):
        raise AssertionError("disabled rules never run")


@pytest.mark.django_db
def test_a_disabled_rule_does_not_run():
    device = make_device()
    with registered("shadow", Shadow), configured({"rules": {"shadow": {"enabled": False}}}) as engine:
        evaluate([reading(device, minutes(0), {"level_cm": 1})])
    assert "shadow" not in [r.name for r in engine.rules]


def test_registry_reset_and_builtin_registration():
    before = base.generation()
    base.reset()
    try:
        assert rule_names() == list(base.BUILTIN_RULES)       # re-registered lazily
    finally:
        base.register_builtin_rules()
    assert base.generation() > before


@pytest.fixture
def committed(django_db_setup, django_db_blocker):
    """Committed rows in the test database (workers in other threads only see committed data), removed afterwards."""
    from twin.models import GeoEvent, Layer

    made: list = []
    with django_db_blocker.unblock():
        yield made
        for device in made:
            GeoEvent.objects.filter(source_feature=device).delete()
            RuleState.objects.filter(Q(subject=str(device.pk)) | Q(subject__startswith=f"{device.pk}:")).delete()
            layer = device.layer
            device.delete()
            Layer.objects.filter(pk=layer.pk).delete()


def test_workers_evaluating_the_same_alarm_at_the_same_moment_open_one_event(committed):
    """Four threads, four database connections, the same batch at once: one event, one state row."""
    import threading

    from django.db import connections

    panel = make_device(sensor_type="fire_alarm", unit="state")
    committed.append(panel)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            start.wait()
            # each worker's first alarm has its own time: without the row lock each would start an episode
            evaluate([reading(panel, minutes(i + 1), {"alarm": True}, stream="fire")])
        except BaseException as exc:   # reported to the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    with configured():
        evaluate([reading(panel, minutes(-1), {"alarm": False}, stream="fire")])   # the state row exists already
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    [event] = events_of(panel)
    assert RuleState.objects.filter(rule="fire", subject=str(panel.pk)).count() == 1
    assert event.payload["alarm_readings"] >= 1


def test_rules_filtering_by_shape_get_exactly_the_readings_their_wants_accepts_in_batch_order():
    from datetime import datetime, timezone

    from ingestion.messages import Reading
    from ingestion.rules.engine import _Shapes

    class LevelsOnly(Rule):
        name = "levels-only"
        wants_by_shape = True

        def wants(self, r):
            return "level_cm" in r.values and r.lon is None

        def evaluate(self, readings, ctx):
            pass

    at = datetime(2026, 11, 24, tzinfo=timezone.utc)
    batch = [Reading(1, "a", "sensor", "water_level", at, {"level_cm": 1}),
             Reading(2, "b", "sensor", "air", at, {"pm25": 3}),
             Reading(3, "c", "boat", "position", at, {"level_cm": 2}, lon=107.6, lat=16.5),
             Reading(4, "d", "sensor", "water_level", at, {"level_cm": 5}),
             Reading(5, "e", "sensor", "water_level", at, {"level_cm": 5, "battery": 80})]
    rule = LevelsOnly(RuleConfig(), router=None)
    shapes = _Shapes(batch)
    assert shapes.wanted(rule) == [r for r in batch if rule.wants(r)]
    assert [r.feature_id for r in shapes.wanted(rule)] == [1, 4, 5]
    assert len(shapes.samples) == 4                      # 1 and 4 share a shape: asked once
    everything = shapes.wanted(Tally(RuleConfig(), router=None))
    assert everything == batch and everything is not batch   # a list of its own
