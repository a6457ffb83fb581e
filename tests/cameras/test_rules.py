# SPDX-License-Identifier: AGPL-3.0-or-later
"""The ingestion rule for camera detections: one event per lifecycle, at the object's ground position."""
from __future__ import annotations

import pytest

from ingestion.models import RuleState
from ingestion.rules.engine import configured, evaluate
from tests.ingestion.rules_support import T0, events_of, history, make_device, minutes, reading
from twin.models import EventStatus

pytestmark = pytest.mark.django_db

ROUTING = {"routing": {"fallback_agency": "hue-ioc"}}
CAM_AT = (107.5959093, 16.4624455)
GROUND = [107.5964, 16.4620]


@pytest.fixture
def camera():
    return make_device("camera", at=CAM_AT, heading_deg=133.6, fov_deg=12, range_m=160)


def message(kind: str, obj_id: str = "cam-1-7", **after) -> dict:
    return {"type": kind, "after": {"id": obj_id, "label": "vehicle", "start_time": T0.isoformat(),
                                    "ground": {"type": "Point", "coordinates": GROUND}, **after}}


def test_new_update_end_is_one_event_at_the_ground_position_resolved_at_the_end(camera):
    with configured(ROUTING):
        evaluate([reading(camera, minutes(0), message("new"), stream="detection")])
        evaluate([reading(camera, minutes(0.1), message("update"), stream="detection")])
        evaluate([reading(camera, minutes(0.2), message("end", end_time=T0.isoformat()), stream="detection")])
    [event] = events_of(camera)
    assert (event.kind, event.category, event.severity, event.status) == ("camera", "traffic_detection", 1,
                                                                          EventStatus.RESOLVED)
    assert list(event.geom.coords) == pytest.approx(GROUND)
    assert history(event) == [("", "new", "rule:camera"), ("new", "resolved", "rule:camera")]
    assert not RuleState.objects.filter(rule="camera", subject=f"{camera.pk}:cam-1-7").exists()   # no memory left


def test_alerts_carry_their_category_and_default_severity(camera):
    with configured(ROUTING):
        evaluate([reading(camera, minutes(0), message("new", "cam-ww", category="wrong_way", zone="z"),
                          stream="detection")])
    [event] = events_of(camera)
    assert (event.category, event.severity, event.status) == ("wrong_way", 4, EventStatus.NEW)
    assert "Đi ngược chiều" in event.title and "Wrong-way driving" in event.title


def test_a_redelivered_new_after_the_end_does_not_reopen_the_object(camera):
    with configured(ROUTING):
        evaluate([reading(camera, minutes(0), message("new"), stream="detection"),
                  reading(camera, minutes(1), message("end"), stream="detection")])
        evaluate([reading(camera, minutes(0), message("new"), stream="detection")])      # QoS 1 redelivery
    [event] = events_of(camera)
    assert event.status == EventStatus.RESOLVED


def test_plain_detections_can_be_left_out_of_the_event_queue(camera):
    with configured({**ROUTING, "rules": {"camera": {"detection_events": False}}}):
        evaluate([reading(camera, minutes(0), message("new"), stream="detection"),
                  reading(camera, minutes(0.1), message("new", "cam-c", category="congestion"),
                          stream="detection")])
    assert [e.category for e in events_of(camera)] == ["congestion"]


def test_an_object_without_a_ground_position_is_placed_at_the_camera(camera):
    msg = message("new")
    del msg["after"]["ground"]
    with configured(ROUTING):
        evaluate([reading(camera, minutes(0), msg, stream="detection")])
    [event] = events_of(camera)
    assert list(event.geom.coords) == pytest.approx(list(CAM_AT))
