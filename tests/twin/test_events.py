# SPDX-License-Identifier: AGPL-3.0-or-later
"""Geo-events: placed in their ward, routed to an agency, moved through a recorded lifecycle."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point

from tests.twin.factories import NGO_MON
from twin.errors import InvalidInput, InvalidTransition, NotFound
from twin.models import EventStatus
from twin.services import EventDraft, raise_event, transition_event

WHEN = datetime(2026, 11, 24, 8, 30, tzinfo=timezone.utc)


def _draft(**overrides) -> EventDraft:
    values = dict(kind="alert", category="fire", geom=Point(*NGO_MON, srid=4326), occurred_at=WHEN, severity=5,
                  title="Khói tại Ngọ Môn", producer="rule:smoke")
    values.update(overrides)
    return EventDraft(**values)


@pytest.mark.django_db
def test_a_new_event_is_placed_in_its_ward_and_routed_to_an_agency():
    event, created = raise_event(_draft())
    assert created and event.status == EventStatus.NEW
    assert event.ward.code == "19753"
    assert event.agency is not None and "fire" in event.agency.categories
    assert [(h.from_status, h.to_status, h.actor_label) for h in event.history.all()] == [("", "new", "rule:smoke")]


@pytest.mark.django_db
def test_the_same_source_key_updates_the_event_instead_of_duplicating_it():
    first, created_first = raise_event(_draft(source_key="cam-7:track-42", severity=3))
    second, created_second = raise_event(_draft(source_key="cam-7:track-42", severity=4))
    assert (created_first, created_second) == (True, False)
    assert first.pk == second.pk and second.severity == 4


@pytest.mark.django_db
def test_lifecycle_records_who_changed_what_and_when():
    user = get_user_model().objects.create_user("operator-lan")
    event, _ = raise_event(_draft())
    transition_event(event.pk, EventStatus.ACKNOWLEDGED, actor=user, note="Đã xem camera")
    transition_event(event.pk, EventStatus.DISPATCHED, actor=user)
    transition_event(event.pk, EventStatus.RESOLVED, actor=user, note="Đã dập lửa")
    steps = [(h.from_status, h.to_status, h.actor_label) for h in event.history.all()]
    assert steps == [("", "new", "rule:smoke"), ("new", "acknowledged", "operator-lan"),
                     ("acknowledged", "dispatched", "operator-lan"), ("dispatched", "resolved", "operator-lan")]
    assert all(h.at is not None for h in event.history.all())


@pytest.mark.django_db
@pytest.mark.parametrize("path", [["resolved", "acknowledged"], ["dismissed", "new"], ["dismissed", "resolved"]])
def test_closed_events_cannot_be_reopened(path):
    event, _ = raise_event(_draft())
    transition_event(event.pk, "acknowledged" if path[0] == "resolved" else path[0])
    if path[0] == "resolved":
        transition_event(event.pk, "resolved")
    with pytest.raises(InvalidTransition) as caught:
        transition_event(event.pk, path[1])
    assert caught.value.status == 409


@pytest.mark.django_db
def test_bad_event_input_is_refused():
    with pytest.raises(InvalidInput, match="time zone"):
        raise_event(_draft(occurred_at=datetime(2026, 1, 1)))
    with pytest.raises(InvalidInput, match="unknown status"):
        transition_event(1, "teleported")
    with pytest.raises(NotFound):
        transition_event(10**12, "acknowledged")
