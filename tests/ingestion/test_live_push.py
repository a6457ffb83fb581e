# SPDX-License-Identifier: AGPL-3.0-or-later
"""Live push of events over /ws/live: real ASGI app, real Mosquitto, real PostGIS, no mocks."""
from __future__ import annotations

import json
import time

import pytest

from tests.ingestion.live_support import (HANOI_BBOX, HUE_BBOX, NGO_MON, MqttListener, draft_at, live,  # noqa: F401
                                          percentiles, raise_committed_view)
from tests.ingestion.mqtt_support import WAIT_S, in_thread
from twin.models import EventStatus, GeoEvent
from twin.services import raise_event, transition_event

pytestmark = pytest.mark.django_db

EVENT_FIELDS = {"id", "kind", "category", "severity", "status", "title", "geometry", "ward", "agency", "occurred_at",
                "updated_at", "layer", "source_feature"}


def test_raised_event_reaches_a_client_whose_viewport_covers_it_and_not_one_looking_elsewhere(
        live, django_capture_on_commit_callbacks):
    here = live.operator(bbox=HUE_BBOX, events=True)
    elsewhere = live.operator(bbox=HANOI_BBOX, events=True)

    event = raise_committed_view(django_capture_on_commit_callbacks, draft_at(*NGO_MON))

    message = here.receive_type("event")
    assert message["op"] == "created"
    assert message["city"] == "hue"
    assert set(message["event"]) == EVENT_FIELDS
    assert message["event"]["id"] == event.pk
    assert message["event"]["status"] == EventStatus.NEW
    assert message["event"]["geometry"] == {"type": "Point", "coordinates": list(NGO_MON)}
    assert message["event"]["ward"]["name_vi"]          # routed to its Huế ward
    assert elsewhere.receives_nothing()


def test_event_payload_carries_no_personal_data(live, django_capture_on_commit_callbacks):
    client = live.operator(bbox=HUE_BBOX, events=True)
    raise_committed_view(django_capture_on_commit_callbacks, draft_at(*NGO_MON))

    text = json.dumps(client.receive_type("event"), ensure_ascii=False)
    assert "Nguyễn Văn A" not in text and "0905123456" not in text and "reporter" not in text


def test_client_without_a_viewport_gets_events_everywhere_and_one_without_events_gets_none(
        live, django_capture_on_commit_callbacks):
    everywhere = live.operator(events=True)
    no_events = live.operator(bbox=HUE_BBOX, events=False)

    raise_committed_view(django_capture_on_commit_callbacks, draft_at(*NGO_MON))

    assert everywhere.receive_type("event")["op"] == "created"
    assert no_events.receives_nothing()


def test_a_transition_is_pushed_with_the_new_status(live, django_capture_on_commit_callbacks):
    client = live.operator(bbox=HUE_BBOX, events=True)
    event = raise_committed_view(django_capture_on_commit_callbacks, draft_at(*NGO_MON))
    assert client.receive_type("event")["op"] == "created"

    with django_capture_on_commit_callbacks(execute=True):
        transition_event(event.pk, EventStatus.ACKNOWLEDGED, actor_label="test-operator")

    message = client.receive_type("event")
    assert (message["op"], message["event"]["id"], message["event"]["status"]) == (
        "transition", event.pk, EventStatus.ACKNOWLEDGED)


def test_an_event_raised_again_with_its_source_key_is_pushed_as_updated(live, django_capture_on_commit_callbacks):
    client = live.operator(bbox=HUE_BBOX, events=True)
    key = f"live-test-{time.monotonic_ns()}"
    raise_committed_view(django_capture_on_commit_callbacks, draft_at(*NGO_MON, source_key=key, severity=3))
    assert client.receive_type("event")["op"] == "created"

    raise_committed_view(django_capture_on_commit_callbacks, draft_at(*NGO_MON, source_key=key, severity=5))

    message = client.receive_type("event")
    assert (message["op"], message["event"]["severity"]) == ("updated", 5)


def test_a_rolled_back_event_is_never_announced_and_a_committed_one_is(live):
    client = live.operator(bbox=HUE_BBOX, events=True)

    def rolled_back() -> None:
        from django.db import transaction

        with transaction.atomic():
            raise_event(draft_at(*NGO_MON, title="rolled back"))
            transaction.set_rollback(True)

    def committed() -> int:
        return raise_event(draft_at(*NGO_MON, title="committed"))[0].pk

    in_thread(rolled_back)
    event_id = in_thread(committed)       # a real commit, in another thread: on_commit runs for real
    try:
        message = client.receive_type("event")
        assert (message["event"]["id"], message["event"]["title"]) == (event_id, "committed")
        assert client.receives_nothing(0.5)
    finally:
        in_thread(lambda: GeoEvent.objects.filter(pk=event_id).delete())


def test_republished_event_reaches_a_plain_mqtt_subscriber_with_the_documented_json(
        live, django_capture_on_commit_callbacks):
    listener = MqttListener(f"{live.root}/hue/events/#")
    try:
        event = raise_committed_view(django_capture_on_commit_callbacks, draft_at(*NGO_MON))
        deadline = time.monotonic() + WAIT_S
        while not listener.messages and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        listener.close()

    assert listener.messages, "nothing arrived on the MQTT events topic"
    topic, payload = listener.messages[0]
    assert topic == f"{live.root}/hue/events/{event.pk}"
    message = json.loads(payload)
    assert {"type", "op", "city", "event", "published_at"} == set(message)
    assert (message["type"], message["op"], message["city"]) == ("event", "created", "hue")
    assert set(message["event"]) == EVENT_FIELDS


def test_latency_from_commit_to_websocket_is_reported(live, django_capture_on_commit_callbacks, capsys):
    client = live.operator(bbox=HUE_BBOX, events=True)
    samples = []
    for n in range(40):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            raise_event(draft_at(NGO_MON[0] + n * 1e-5, NGO_MON[1], title=f"latency {n}"))
        started = time.perf_counter()
        for callback in callbacks:          # what the commit would run
            callback()
        client.receive_type("event")
        samples.append((time.perf_counter() - started) * 1000)
    with capsys.disabled():
        print(f"\nlive push, commit → WebSocket (in-process ASGI, idle broker): {percentiles(samples)}")
    assert max(samples) < WAIT_S * 1000
