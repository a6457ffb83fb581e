# SPDX-License-Identifier: AGPL-3.0-or-later
"""Who may open /ws/live and what they may subscribe to (real ASGI app, real database)."""
from __future__ import annotations

import pytest

from tests.ingestion.live_support import HUE_BBOX, NGO_MON, draft_at, live, raise_committed_view  # noqa: F401

pytestmark = pytest.mark.django_db


def test_anonymous_client_is_told_why_and_closed_with_4401(live):
    client = live.client()
    message = client.connect()
    assert (message["type"], message["code"]) == ("error", "NotAuthenticated")
    assert client.close_code() == 4401


@pytest.mark.parametrize("via", ["header", "subprotocol", "query"])
def test_a_wrong_token_is_refused_with_4401_however_it_is_sent(live, via):
    client = live.client(token="ct_0123456789_not-a-real-secret", via=via)
    assert client.connect()["code"] == "NotAuthenticated"
    assert client.close_code() == 4401


@pytest.mark.parametrize("via", ["header", "subprotocol", "query"])
def test_a_valid_token_is_accepted_however_it_is_sent(live, via):
    _, token = live.people.add("operator")
    client = live.client(token=token, via=via)
    hello = client.connect()
    assert (hello["type"], hello["auth"], hello["events"]) == ("hello", "token", True)
    if via == "subprotocol":
        assert client.subprotocol == "citytwin.live"        # never the token echoed back


def test_a_user_without_any_role_is_refused_with_4403(live):
    _, token = live.people.add(None)
    client = live.client(token=token)
    assert client.connect()["code"] == "PermissionDenied"
    assert client.close_code() == 4403


def test_a_role_without_read_events_cannot_subscribe_to_events_and_receives_none(
        live, django_capture_on_commit_callbacks):
    _, token = live.people.add("planner")            # private layers yes, events no
    client = live.client(token=token)
    assert client.connect()["events"] is False
    client.send({"type": "subscribe", "bbox": HUE_BBOX, "events": True})
    answer = client.receive()
    assert (answer["type"], answer["code"]) == ("error", "PermissionDenied")

    raise_committed_view(django_capture_on_commit_callbacks, draft_at(*NGO_MON))
    assert client.receives_nothing()


def test_a_session_cookie_from_our_own_origin_is_accepted(live):
    username, _ = live.people.add("operator")
    cookie = live.people.session_cookie(username)
    client = live.client(headers=[(b"cookie", cookie), (b"origin", b"http://127.0.0.1:8000")])
    hello = client.connect()
    assert (hello["type"], hello["user"], hello["auth"]) == ("hello", username, "session")


@pytest.mark.parametrize("origin", [b"https://evil.example", None])
def test_a_session_cookie_from_another_origin_or_none_is_refused(live, origin):
    username, _ = live.people.add("operator")
    headers = [(b"cookie", live.people.session_cookie(username))] + ([(b"origin", origin)] if origin else [])
    client = live.client(headers=headers)
    assert client.connect()["code"] == "PermissionDenied"
    assert client.close_code() == 4403


@pytest.mark.parametrize("subscription, fragment", [
    ({"bbox": [107.7, 16.4, 107.5, 16.5]}, "minx <= maxx"),
    ({"bbox": [107.5, 16.4, 107.7]}, "four finite numbers"),
    ({"bbox": [0, 0, 200, 10]}, "EPSG:4326"),
    ({"bbox": ["a", 0, 1, 1]}, "four finite numbers"),
    ({"layers": "hue-sensors"}, "list of layer ids"),
    ({"events": "yes"}, "true or false"),
    ({"viewport": [0, 0, 1, 1]}, "unknown subscribe field"),
    ({"layers": ["no-such-layer"]}, "unknown layer(s): no-such-layer"),
])
def test_a_bad_subscription_answers_an_error_and_keeps_the_connection(live, subscription, fragment):
    client = live.operator()
    client.send({"type": "subscribe", **subscription})
    answer = client.receive()
    assert (answer["type"], answer["code"]) == ("error", "InvalidParameterValue")
    assert fragment in answer["description"]
    assert client.subscribe(bbox=HUE_BBOX, events=True)["events"] is True     # still usable


def test_a_message_that_is_not_json_or_of_unknown_type_answers_an_error(live):
    client = live.operator()
    client.runner.run(client.comm.send_to(text_data="not json"))
    assert client.receive()["code"] == "InvalidParameterValue"
    client.send({"type": "dance"})
    assert client.receive()["code"] == "InvalidParameterValue"
    client.send({"type": "ping", "id": 7})
    assert client.receive() == {"type": "pong", "id": 7}
