# SPDX-License-Identifier: AGPL-3.0-or-later
"""``insert_models`` stores exactly what Django's ``bulk_create`` stores, one array per column."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.contrib.gis.geos import Point
from django.db import DataError, transaction
from django.forms.models import model_to_dict

from tests.twin.factories import NGO_MON
from twin.models import EventStatus, GeoEvent, GeoEventTransition
from twin.services.sql import insert_models

WHEN = datetime(2026, 11, 24, 8, 30, tzinfo=timezone.utc)


def _events(prefix: str, **overrides) -> list[GeoEvent]:
    values = dict(kind="report", category="littering", severity=2, geom=Point(*NGO_MON, srid=4326),
                  title="Rác thải <tại> Ngọ Môn — “quote”", occurred_at=WHEN, status=EventStatus.NEW,
                  payload={"ward": "19753", "nested": {"list": [1, 2.5, None, "ư"]}, "none": None})
    values.update(overrides)
    return [GeoEvent(source_key=f"{prefix}:{i}", **values) for i in range(3)]


def _stored(events: list[GeoEvent]) -> list[dict]:
    rows = GeoEvent.objects.filter(pk__in=[e.pk for e in events]).order_by("source_key")
    return [{k: v for k, v in model_to_dict(row).items() if k not in ("id", "source_key")} | {"geom": row.geom.ewkt}
            for row in rows]


@pytest.mark.django_db
def test_rows_inserted_from_arrays_equal_the_rows_bulk_create_stores():
    ours, django = insert_models(_events("ours")), GeoEvent.objects.bulk_create(_events("django"))
    assert all(e.pk is not None and not e._state.adding for e in ours)
    assert [e.source_key for e in GeoEvent.objects.filter(pk__in=[e.pk for e in ours]).order_by("pk")] == [
        "ours:0", "ours:1", "ours:2"]                     # keys come back in the order the objects were given
    assert _stored(ours) == _stored(django)
    stored = GeoEvent.objects.get(pk=ours[0].pk)
    assert stored.status == "new" and stored.created_at is not None and stored.updated_at is not None


@pytest.mark.django_db
def test_a_geometry_in_another_crs_is_transformed_and_one_without_a_crs_takes_the_fields():
    metres = Point(*NGO_MON, srid=4326).transform(3857, clone=True)
    bare = Point(*NGO_MON)
    moved, plain = insert_models(_events("crs", geom=metres)[:1] + _events("bare", geom=bare)[:1])
    for event in (moved, plain):
        stored = GeoEvent.objects.get(pk=event.pk).geom
        assert stored.srid == 4326 and stored.distance(Point(*NGO_MON, srid=4326)) < 1e-9


@pytest.mark.django_db
def test_nulls_empty_values_and_foreign_keys_travel_as_they_are():
    events = insert_models(_events("nulls", payload={}, title="", ward=None, agency=None))
    transitions = insert_models([GeoEventTransition(event=e, from_status="", to_status=EventStatus.NEW,
                                                    actor_label="test") for e in events])
    stored = GeoEventTransition.objects.filter(pk__in=[t.pk for t in transitions]).order_by("pk")
    assert [t.event_id for t in stored] == [e.pk for e in events] and all(t.at is not None for t in stored)
    stored_event = GeoEvent.objects.get(pk=events[0].pk)
    assert (stored_event.payload, stored_event.title, stored_event.ward_id) == ({}, "", None)
    assert insert_models([]) == []


@pytest.mark.django_db
def test_a_value_too_long_for_its_column_fails_the_whole_statement_and_keeps_nothing():
    events = _events("long")
    events[1].category = "x" * 61
    with pytest.raises(DataError), transaction.atomic():
        insert_models(events)
    assert not GeoEvent.objects.filter(source_key__startswith="long:").exists()


@pytest.mark.django_db
def test_rows_with_keys_taken_beforehand_are_stored_under_those_keys_by_one_statement():
    from twin.services.sql import allocate_ids, execute_as_one, insert_statement

    events = _events("keyed")
    keys = allocate_ids({GeoEvent: 3, GeoEventTransition: 0})
    assert len(set(keys[GeoEvent])) == 3 and keys[GeoEventTransition] == []
    for event, key in zip(events, keys[GeoEvent], strict=True):
        event.pk = key
    transitions = [GeoEventTransition(event=e, from_status="", to_status=EventStatus.NEW, actor_label="test")
                   for e in events]
    execute_as_one([insert_statement(transitions), None, insert_statement(events, with_ids=True)])  # any order
    assert sorted(GeoEvent.objects.filter(source_key__startswith="keyed:").values_list("pk", flat=True)) == \
        sorted(keys[GeoEvent])
    assert GeoEventTransition.objects.filter(event_id__in=keys[GeoEvent]).count() == 3
    with pytest.raises(ValueError, match="without its primary key"):
        insert_statement(_events("unkeyed"), with_ids=True)


@pytest.mark.django_db
def test_one_statement_of_many_writes_keeps_nothing_when_one_part_fails():
    from twin.services.sql import execute_as_one, insert_statement

    fine, too_long = _events("part"), _events("part-long", category="x" * 500)
    with pytest.raises(DataError), transaction.atomic():
        execute_as_one([insert_statement(fine), insert_statement(too_long)])
    assert not GeoEvent.objects.filter(source_key__startswith="part").exists()


@pytest.mark.django_db
def test_reads_sent_together_come_back_each_with_its_own_rows():
    from django.db import ProgrammingError

    from twin.services.sql import Statement, fetch_together

    rows = fetch_together([Statement("SELECT generate_series(1, %s)", [3]), Statement("SELECT %(a)s::text", {"a": "ư"}),
                           Statement("SELECT 1 WHERE false", [])])
    assert rows == [[(1,), (2,), (3,)], [("ư",)], []]
    with pytest.raises(ProgrammingError), transaction.atomic():
        fetch_together([Statement("SELECT 1", []), Statement("SELECT no_such_column", [])])


@pytest.mark.django_db
def test_rows_given_column_wise_are_stored_as_model_instances_would_be_with_defaults_for_fields_left_out():
    from twin.services.sql import columns_statement, execute_as_one

    events = insert_models(_events("cols"))
    execute_as_one([columns_statement(GeoEventTransition, {
        "event_id": [e.pk for e in events], "from_status": [""] * 3, "to_status": [EventStatus.ACKNOWLEDGED] * 3,
        "actor_label": ["a", "b", "c"]})])
    insert_models([GeoEventTransition(event=events[0], from_status="", to_status=EventStatus.ACKNOWLEDGED,
                                      actor_label="model")])
    rows = list(GeoEventTransition.objects.filter(event__in=events).order_by("pk").values(
        "to_status", "actor_label", "note", "changes", "actor_id"))
    assert [r["actor_label"] for r in rows] == ["a", "b", "c", "model"]
    assert all({k: v for k, v in r.items() if k != "actor_label"} == {
        "to_status": "acknowledged", "note": "", "changes": {}, "actor_id": None} for r in rows)
    assert GeoEventTransition.objects.filter(event__in=events, at__isnull=True).count() == 0
    with pytest.raises(ValueError, match="different lengths"):
        columns_statement(GeoEventTransition, {"event_id": [1, 2], "actor_label": ["x"]})
    with pytest.raises(ValueError, match="no field"):
        columns_statement(GeoEventTransition, {"event_id": [1], "nonsense": ["x"]})
