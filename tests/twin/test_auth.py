# SPDX-License-Identifier: AGPL-3.0-or-later
"""Users, roles, API tokens, sessions and device credentials (real PostGIS, no mocks)."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from twin.errors import InvalidInput, NotAuthenticated
from twin.models import ApiToken, DeviceCredential, Feature
from twin.roles import Capability, Role, has_capability
from twin.services import (FeatureRow, LayerSpec, authenticate_device, create_api_token, create_device_credential,
                           ensure_layer, write_features)
from twin.services.users import UserSpec, ensure_user, revoke_api_tokens

pytestmark = pytest.mark.django_db
EVENTS_URL = "/api/events"


def make_user(username: str, *roles: Role):
    user, _ = ensure_user(UserSpec(username=username, roles=tuple(roles)))
    return user


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


# --- roles ---

def test_every_role_group_exists_after_migrate():
    names = set(Group.objects.values_list("name", flat=True))
    assert {role.value for role in Role} <= names
    assert len(Role) == 7


@pytest.mark.parametrize(("role", "capability", "expected"), [
    (Role.OPERATOR, Capability.HANDLE_EVENTS, True),
    (Role.RESPONDER, Capability.HANDLE_EVENTS, True),
    (Role.PLANNER, Capability.HANDLE_EVENTS, False),
    (Role.PLANNER, Capability.WRITE_FEATURES, True),
    (Role.TOURISM_OFFICER, Capability.READ_EVENTS, True),
    (Role.TOURISM_OFFICER, Capability.HANDLE_EVENTS, False),
    (Role.LEADER, Capability.READ_KPIS, True),
    (Role.AGENCY_OFFICER, Capability.PROCESS_REPORTS, True),
    (Role.ADMINISTRATOR, Capability.MANAGE_DEVICES, True),
])
def test_role_grants_capability_from_the_table(role, capability, expected):
    assert has_capability(make_user(f"u-{role.value}", role), capability) is expected


def test_disabled_user_has_no_capability():
    user = make_user("gone", Role.ADMINISTRATOR)
    user.is_active = False
    user.save()
    assert not has_capability(user, Capability.READ_EVENTS)


# --- create-user ---

def test_create_user_is_idempotent_and_sets_exactly_the_given_roles(monkeypatch):
    monkeypatch.setenv("T_PASSWORD", "a-long-Unusual-passphrase-42")
    call_command("create_user", "lan", "--role", "planner", "--email", "lan@example.org",
                 "--password-from-env", "T_PASSWORD", stdout=io.StringIO())
    call_command("create_user", "lan", "--role", "operator", "--role", "leader", stdout=io.StringIO())
    user = get_user_model().objects.get(username="lan")
    assert sorted(user.groups.values_list("name", flat=True)) == ["leader", "operator"]
    assert user.is_staff and not user.is_superuser
    assert user.email == "lan@example.org"
    assert user.check_password("a-long-Unusual-passphrase-42")


def test_create_user_superuser_for_make_demo(monkeypatch):
    monkeypatch.setenv("CITYTWIN_ADMIN_PASSWORD", "demo-Admin-passphrase-2025")
    out = io.StringIO()
    call_command("create_user", "admin", "--role", "administrator", "--superuser",
                 "--password-from-env", "CITYTWIN_ADMIN_PASSWORD", stdout=out)
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff
    assert "admin" in out.getvalue()


def test_create_user_refuses_unknown_role_weak_password_and_missing_env(monkeypatch):
    with pytest.raises(CommandError, match="unknown role"):
        call_command("create_user", "x", "--role", "mayor")
    monkeypatch.setenv("WEAK", "123")
    with pytest.raises(CommandError, match="password refused"):
        call_command("create_user", "x", "--role", "planner", "--password-from-env", "WEAK")
    with pytest.raises(CommandError, match="not set"):
        call_command("create_user", "x", "--password-from-env", "NO_SUCH_VARIABLE_HERE")


def test_role_names_accept_dashes():
    user = make_user("tour", Role("tourism_officer"))
    call_command("create_user", "tour", "--role", "tourism-officer", stdout=io.StringIO())
    assert list(user.groups.values_list("name", flat=True)) == ["tourism_officer"]


# --- API tokens ---

def test_create_token_command_prints_a_token_that_authenticates():
    make_user("op", Role.OPERATOR)
    out = io.StringIO()
    call_command("create_token", "op", "--name", "qgis", "--days", "30", stdout=out, stderr=io.StringIO())
    secret = out.getvalue().strip()
    assert secret.startswith("ct_")
    token = ApiToken.objects.get(name="qgis")
    assert secret not in token.key_hash and token.expires_at > timezone.now() + timedelta(days=29)
    assert Client().get(EVENTS_URL, **bearer(secret)).status_code == 200


def test_token_auth_reads_events_without_a_session(client):
    _, secret = create_api_token(make_user("resp", Role.RESPONDER), "tablet")
    response = client.get(EVENTS_URL, **bearer(secret))
    assert response.status_code == 200
    assert response.json()["type"] == "FeatureCollection"


@pytest.mark.parametrize("header", [
    "Bearer ct_0000000000_notarealtoken",
    "Bearer nonsense",
    "Bearer ",
    "Basic b3A6cGFzcw==",
    "Token ct_abc_def",
])
def test_malformed_or_unknown_token_is_401_with_challenge(client, header):
    response = client.get(EVENTS_URL, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "NotAuthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_401(client):
    _, secret = create_api_token(make_user("old", Role.OPERATOR), "old", expires_at=timezone.now() - timedelta(1))
    response = client.get(EVENTS_URL, **bearer(secret))
    assert response.status_code == 401
    assert "invalid_token" in response["WWW-Authenticate"]


def test_revoked_token_is_401(client):
    token, secret = create_api_token(make_user("rev", Role.OPERATOR), "laptop")
    assert client.get(EVENTS_URL, **bearer(secret)).status_code == 200
    assert revoke_api_tokens([token.pk]) == 1
    assert client.get(EVENTS_URL, **bearer(secret)).status_code == 401


def test_token_of_disabled_user_is_401(client):
    user = make_user("left", Role.OPERATOR)
    _, secret = create_api_token(user, "x")
    user.is_active = False
    user.save()
    assert client.get(EVENTS_URL, **bearer(secret)).status_code == 401


def test_bad_token_wins_over_a_valid_session(client):
    client.force_login(make_user("both", Role.OPERATOR))
    assert client.get(EVENTS_URL).status_code == 200
    assert client.get(EVENTS_URL, HTTP_AUTHORIZATION="Bearer ct_x_y").status_code == 401


def test_token_response_never_echoes_the_token(client):
    response = client.get(EVENTS_URL, HTTP_AUTHORIZATION="Bearer ct_abcdef0123_secretpart")
    assert b"secretpart" not in response.content


# --- sessions and CSRF ---

def test_session_auth_reads_events(client):
    client.force_login(make_user("sess", Role.LEADER))
    assert client.get(EVENTS_URL).status_code == 200


def test_anonymous_read_of_events_is_401(client):
    response = client.get(EVENTS_URL)
    assert response.status_code == 401
    assert response.json() == {"code": "NotAuthenticated", "description": response.json()["description"]}


def test_session_write_without_csrf_token_is_403_but_token_write_is_csrf_exempt():
    user = make_user("csrf", Role.OPERATOR)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post("/api/events/999999999/transition", {"status": "acknowledged"},
                            content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "PermissionDenied"
    _, secret = create_api_token(user, "script")
    script = Client(enforce_csrf_checks=True)
    response = script.post("/api/events/999999999/transition", {"status": "acknowledged"},
                           content_type="application/json", **bearer(secret))
    assert response.status_code == 404  # past authentication and CSRF: the event does not exist


def test_session_write_with_csrf_token_passes():
    from django.middleware.csrf import _get_new_csrf_string

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user("csrf-ok", Role.RESPONDER))
    browser.cookies["csrftoken"] = csrf = _get_new_csrf_string()
    response = browser.post("/api/events/999999999/transition", {"status": "acknowledged"},
                            content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 404  # authenticated, CSRF accepted; the event does not exist


def test_wrong_method_is_405_json(client):
    response = client.delete(EVENTS_URL)
    assert response.status_code == 405
    assert response.json()["code"] == "MethodNotAllowed"


# --- device credentials ---

@pytest.fixture
def camera() -> Feature:
    layer = ensure_layer(LayerSpec(slug="t-auth-cameras", title_vi="Camera thử", kind="camera"))
    import shapely

    write_features(layer, [FeatureRow(external_id="cam-1", geom=shapely.Point(107.5786, 16.4679),
                                      properties={"heading_deg": 90, "fov_deg": 60, "range_m": 80})])
    return Feature.objects.get(layer=layer, external_id="cam-1")


def test_device_credential_verifies_right_secret_and_refuses_wrong_one(camera):
    credential, secret = create_device_credential(camera)
    assert authenticate_device(credential.client_id, secret).feature == camera
    with pytest.raises(NotAuthenticated):
        authenticate_device(credential.client_id, secret + "x")
    with pytest.raises(NotAuthenticated):
        authenticate_device("no-such-device", secret)


def test_device_credential_stores_only_a_hash(camera):
    credential, secret = create_device_credential(camera)
    stored = DeviceCredential.objects.get(pk=credential.pk)
    assert secret not in stored.secret_hash and stored.secret_hash.startswith("pbkdf2_")


def test_create_device_credential_command_prints_client_id_and_secret_once(camera):
    out = io.StringIO()
    call_command("create_device_credential", "t-auth-cameras", "cam-1", stdout=out, stderr=io.StringIO())
    lines = dict(line.split("=", 1) for line in out.getvalue().split())
    assert lines["client_id"] == "t-auth-cameras-cam-1"
    assert authenticate_device(lines["client_id"], lines["secret"]).feature == camera
    with pytest.raises(CommandError, match="taken"):
        call_command("create_device_credential", "t-auth-cameras", "cam-1", stdout=io.StringIO(),
                     stderr=io.StringIO())


def test_device_credential_refused_for_a_non_device():
    feature = Feature.objects.exclude(layer__kind__in=["camera", "sensor", "boat"]).first()
    with pytest.raises(InvalidInput):
        create_device_credential(feature)
