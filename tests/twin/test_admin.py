# SPDX-License-Identifier: AGPL-3.0-or-later
"""The Django admin: every model listed and editable, roles respected, maps offline.

The last test drives a real headless Chromium (Debian's /usr/bin/chromium via
Playwright from PyPI) with every host but the loopback unresolvable, and
checks that the map widget renders from our own server alone.
"""
from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import shapely
from django.contrib import admin
from django.contrib.gis.geos import Point
from django.urls import reverse
from django.utils import timezone

from map_ui import checks as map_ui_checks
from twin.models import ApiToken, DeviceCredential, Feature, GeoEvent, GeoEventTransition, Layer, Observation
from twin.roles import Role
from twin.services import (EventDraft, FeatureRow, LayerSpec, ObservationRow, create_api_token,
                           create_device_credential, ensure_layer, raise_event, record_observations,
                           write_features)
from twin.services.users import UserSpec, ensure_user

NGO_MON = (107.5786, 16.4679)
CHROMIUM = Path("/usr/bin/chromium")
# map-offline.md: these args keep WebGL/canvas working headless; the resolver rule is the offline guard.
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def twin_models():
    return [model for model in admin.site._registry if model._meta.app_label == "twin"]


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def login(client, *roles: Role, username: str | None = None):
    user = ensure_user(UserSpec(username=username or "-".join(r.value for r in roles), roles=tuple(roles)))[0]
    client.force_login(user)
    return user


@pytest.fixture
def camera_layer(db) -> Layer:
    return ensure_layer(LayerSpec(slug="t-admin-cameras", title_vi="Camera thử", kind="camera"))


@pytest.fixture
def fire_event(db):
    return raise_event(EventDraft(kind="alert", category="fire", geom=Point(*NGO_MON, srid=4326),
                                  occurred_at=timezone.now(), title="Cháy thử", producer="test"))[0]


class _ResourceParser(HTMLParser):
    """Collect the URLs a page makes the browser fetch (script/img src, link href)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        wanted = {"script": "src", "img": "src", "link": "href", "iframe": "src", "source": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def remote_urls(html: str) -> list[str]:
    parser = _ResourceParser()
    parser.feed(html)
    inline = re.findall(r"""url\(\s*['"]?(https?://[^'")]+)""", html)
    return [u for u in parser.urls + inline
            if re.match(r"(https?:)?//", u) and not re.match(r"(https?:)?//(127\.0\.0\.1|localhost)[:/]", u)]


# --- every model, for a superuser ---

def test_every_twin_model_is_registered():
    names = {m.__name__ for m in twin_models()}
    assert names == {"City", "Layer", "Feature", "Observation", "GeoEvent", "AdminArea", "Agency", "ApiToken",
                     "DeviceCredential"}


@pytest.mark.parametrize("model", twin_models(), ids=lambda m: m.__name__)
def test_changelist_and_add_page_answer_200_for_a_superuser(admin_client, model):
    assert admin_client.get(admin_url(model, "changelist")).status_code == 200
    assert admin_client.get(admin_url(model, "add")).status_code == 200


@pytest.fixture
def one_of_each(db, admin_user, fire_event):
    """At least one object of every model: the city has most; add a reading, a token, a device login."""
    layer = ensure_layer(LayerSpec(slug="t-admin-devices", title_vi="Cảm biến", kind="sensor"))
    write_features(layer, [FeatureRow("aq-0", shapely.Point(*NGO_MON), {"sensor_type": "air_quality",
                                                                        "unit": "µg/m³"})])
    sensor = Feature.objects.get(layer=layer)
    record_observations([ObservationRow(feature_id=sensor.pk, time=timezone.now(), values={"pm25": 12.5})])
    create_api_token(admin_user, "one")
    create_device_credential(sensor)


@pytest.mark.parametrize("model", twin_models(), ids=lambda m: m.__name__)
def test_change_page_of_every_model_answers_200(admin_client, model, one_of_each):
    obj = model.objects.order_by("-pk").first()
    assert admin_client.get(admin_url(model, "change", obj.pk)).status_code == 200


def test_feature_change_page_references_no_remote_url(admin_client):
    feature = Feature.objects.filter(layer__kind="building").first()
    html = admin_client.get(admin_url(Feature, "change", feature.pk)).content.decode()
    assert "map_ui/vendor/ol/ol.js" in html and "twinOfflineMap" in html
    assert remote_urls(html) == []
    assert "cdn.jsdelivr" not in html and "openstreetmap" not in html.lower() and "earthdata" not in html


def test_observation_changelist_defaults_to_the_last_24_hours_and_filters_by_feature(admin_client):
    feature = Feature.objects.first()
    response = admin_client.get(admin_url(Observation, "changelist"),
                                {"feature": feature.pk, "window": "all"})
    assert response.status_code == 200
    assert str(feature) in response.content.decode()


# --- saves go through the services ---

def test_bad_camera_heading_is_a_form_error_not_a_crash(admin_client, camera_layer):
    response = admin_client.post(admin_url(Feature, "add"), {
        "layer": camera_layer.pk, "external_id": "cam-9", "name": "Cổng Ngọ Môn",
        "geom": f"SRID=4326;POINT({NGO_MON[0]} {NGO_MON[1]})", "status": "active",
        "properties": '{"heading_deg": 400, "fov_deg": 60, "range_m": 80}'})
    assert response.status_code == 200
    assert "heading_deg" in response.context["adminform"].form.errors["properties"][0]
    assert not Feature.objects.filter(layer=camera_layer).exists()


def test_camera_added_in_the_admin_is_written_with_cleaned_properties(admin_client, camera_layer):
    response = admin_client.post(admin_url(Feature, "add"), {
        "layer": camera_layer.pk, "external_id": "cam-1", "name": "Cổng Ngọ Môn",
        "geom": f"SRID=4326;POINT({NGO_MON[0]} {NGO_MON[1]})", "status": "active",
        "properties": '{"heading_deg": 180, "fov_deg": 60, "range_m": 80}'})
    assert response.status_code == 302, response.context["adminform"].form.errors
    feature = Feature.objects.get(layer=camera_layer, external_id="cam-1")
    assert feature.properties == {"heading_deg": 180.0, "fov_deg": 60.0, "range_m": 80.0, "analytics": []}
    assert feature.geom.srid == 4326 and feature.geom.distance(Point(*NGO_MON, srid=4326)) < 1e-9


def test_feature_geometry_of_the_wrong_type_is_a_form_error(admin_client, camera_layer):
    response = admin_client.post(admin_url(Feature, "add"), {
        "layer": camera_layer.pk, "external_id": "cam-2", "status": "active",
        "geom": "SRID=4326;LINESTRING(107.57 16.46, 107.58 16.47)",
        "properties": '{"heading_deg": 10, "fov_deg": 60, "range_m": 80}'})
    assert "geom" in response.context["adminform"].form.errors


def test_feature_edit_keeps_its_id_and_updates_in_place(admin_client, camera_layer):
    write_features(camera_layer, [FeatureRow("cam-3", shapely.Point(*NGO_MON),
                                             {"heading_deg": 1, "fov_deg": 60, "range_m": 80})])
    feature = Feature.objects.get(layer=camera_layer, external_id="cam-3")
    response = admin_client.post(admin_url(Feature, "change", feature.pk), {
        "name": "renamed", "geom": f"SRID=4326;POINT({NGO_MON[0]} {NGO_MON[1]})", "status": "maintenance",
        "properties": '{"heading_deg": 2, "fov_deg": 60, "range_m": 80}'})
    assert response.status_code == 302
    feature.refresh_from_db()
    assert (feature.name, feature.status, feature.properties["heading_deg"]) == ("renamed", "maintenance", 2.0)
    assert Feature.objects.filter(layer=camera_layer).count() == 1


def test_layer_added_in_the_admin_goes_through_ensure_layer(admin_client):
    response = admin_client.post(admin_url(Layer, "add"), {
        "slug": "t-admin-layer", "title_vi": "Lớp thử", "kind": "poi", "geometry_type": "Point", "style": "{}"})
    assert response.status_code == 302
    assert Layer.objects.get(slug="t-admin-layer").kind == "poi"
    response = admin_client.post(admin_url(Layer, "add"), {
        "slug": "tiles", "title_vi": "x", "kind": "poi", "geometry_type": "Point", "style": "{}"})
    assert response.status_code == 200 and not Layer.objects.filter(slug="tiles").exists()


def test_layer_edit_keeps_its_slug_and_features(admin_client):
    layer = Layer.objects.get(slug="hue-fire-hydrants")
    count = layer.features.count()
    response = admin_client.post(admin_url(Layer, "change", layer.pk), {
        "title_vi": "Trụ nước chữa cháy", "kind": layer.kind, "geometry_type": layer.geometry_type,
        "style": "{}", "is_public": "on", "city": layer.city_id or ""})
    assert response.status_code == 302, response.context["adminform"].form.errors
    layer.refresh_from_db()
    assert (layer.slug, layer.title_vi, layer.is_public, layer.features.count()) == (
        "hue-fire-hydrants", "Trụ nước chữa cháy", True, count)


# --- events: status only through transition_event ---

def test_event_status_is_read_only_and_changes_through_an_admin_action(admin_client, admin_user, fire_event):
    page = admin_client.get(admin_url(GeoEvent, "change", fire_event.pk)).content.decode()
    assert 'name="status"' not in page.split('id="twin-transition"')[0]
    response = admin_client.post(admin_url(GeoEvent, "changelist"),
                                 {"action": "mark_acknowledged", "_selected_action": [fire_event.pk]})
    assert response.status_code == 302
    step = GeoEventTransition.objects.filter(event=fire_event).latest("at")
    assert (step.to_status, step.actor) == ("acknowledged", admin_user)


def test_event_change_page_transition_form_records_actor_and_note(client, fire_event):
    user = login(client, Role.RESPONDER)
    url = reverse("admin:twin_geoevent_transition", args=[fire_event.pk])
    assert client.post(url, {"status": "dispatched", "note": "xe 114 đã xuất phát"}).status_code == 302
    fire_event.refresh_from_db()
    step = GeoEventTransition.objects.filter(event=fire_event).latest("at")
    assert (fire_event.status, step.actor, step.note) == ("dispatched", user, "xe 114 đã xuất phát")


def test_event_added_in_the_admin_is_raised_with_its_ward(admin_client):
    response = admin_client.post(admin_url(GeoEvent, "add"), {
        "kind": "alert", "category": "flood", "severity": 3, "title": "Ngập thử",
        "geom": f"SRID=4326;POINT({NGO_MON[0]} {NGO_MON[1]})", "occurred_at_0": "2025-09-01",
        "occurred_at_1": "08:00:00", "payload": "{}"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = GeoEvent.objects.get(title="Ngập thử")
    assert event.ward.code == "19753" and event.history.get().actor_label == "admin"


# --- roles in the admin ---

def test_planner_edits_features_but_cannot_see_events(db, client):
    login(client, Role.PLANNER)
    assert client.get(admin_url(Feature, "add")).status_code == 200
    assert client.get(admin_url(GeoEvent, "changelist")).status_code == 403
    assert client.get(admin_url(ApiToken, "changelist")).status_code == 403


def test_responder_reads_features_handles_events_and_cannot_add_features(client, fire_event):
    login(client, Role.RESPONDER)
    assert client.get(admin_url(Feature, "changelist")).status_code == 200
    assert client.get(admin_url(Feature, "add")).status_code == 403
    assert client.get(admin_url(GeoEvent, "change", fire_event.pk)).status_code == 200


def test_tourism_officer_cannot_run_event_actions(client, fire_event):
    login(client, Role.TOURISM_OFFICER)
    client.post(admin_url(GeoEvent, "changelist"),
                {"action": "mark_acknowledged", "_selected_action": [fire_event.pk]})
    fire_event.refresh_from_db()
    assert fire_event.status == "new"


# --- credentials: secret once, hash never ---

def test_api_token_added_in_the_admin_is_shown_once_and_stored_hashed(admin_client, admin_user):
    response = admin_client.post(admin_url(ApiToken, "add"), {"user": admin_user.pk, "name": "qgis"})
    assert response.status_code == 200
    secret = re.search(r'id="twin-secret"[^>]*>(ct_[^<]+)<', response.content.decode()).group(1)
    token = ApiToken.objects.get(name="qgis")
    assert secret not in token.key_hash
    change = admin_client.get(admin_url(ApiToken, "change", token.pk)).content.decode()
    assert secret not in change and token.key_hash not in change
    assert admin_client.get("/api/events", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_device_credential_added_in_the_admin_is_shown_once(admin_client):
    layer = ensure_layer(LayerSpec(slug="t-admin-sensors", title_vi="Cảm biến", kind="sensor"))
    write_features(layer, [FeatureRow("aq-1", shapely.Point(*NGO_MON), {"sensor_type": "air_quality",
                                                                        "unit": "µg/m³"})])
    feature = Feature.objects.get(layer=layer)
    response = admin_client.post(admin_url(DeviceCredential, "add"), {"feature": feature.pk, "client_id": ""})
    assert response.status_code == 200
    assert DeviceCredential.objects.get(feature=feature).client_id == "t-admin-sensors-aq-1"
    not_device = Feature.objects.filter(layer__kind="building").first()
    response = admin_client.post(admin_url(DeviceCredential, "add"), {"feature": not_device.pk})
    assert "feature" in response.context["adminform"].form.errors


# --- the offline base map ---

def test_basemap_is_staff_only_geojson_with_the_hue_wards_and_attribution(admin_client, client):
    body = admin_client.get(reverse("admin-basemap")).json()
    levels = [f["properties"]["level"] for f in body["features"]]
    assert levels.count(3) == 40 and levels.count(1) == 1
    assert "Thang Le Quoc" in body["attribution"]
    assert client.get(reverse("admin-basemap")).status_code == 302  # anonymous: to the login page


def test_missing_openlayers_build_is_a_system_error_with_the_fix(monkeypatch):
    assert map_ui_checks.check_vendored_assets() == []
    monkeypatch.setattr(map_ui_checks, "VENDORED_ASSETS", ("map_ui/vendor/ol/not-built.js",))
    [error] = map_ui_checks.check_vendored_assets()
    assert error.id == "map_ui.E001" and "npm ci" in error.hint


# --- a real browser, offline ---

def test_admin_map_renders_offline_in_headless_chromium(committed_live_server, tmp_path):
    if not CHROMIUM.exists() or not shutil.which(str(CHROMIUM)):
        pytest.fail("Chromium is missing: run `make deps` (installs Debian's chromium) — browser tests never skip")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: run `make deps` (pip install -e '.[dev]'); never `playwright install`")
    base, username, password = committed_live_server
    feature = Feature.objects.filter(layer__kind="building").first()
    requests, console_errors, failures = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        page.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{base}/admin/login/?next=/admin/twin/feature/{feature.pk}/change/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        map_element = page.wait_for_selector("#id_geom_map[data-rendered='1'] canvas", timeout=60_000)
        page.wait_for_function("document.getElementById('id_geom_map').dataset.basemapFeatures > 0",
                               timeout=30_000)
        attribution = page.inner_text("#id_geom_map .ol-attribution")
        page.screenshot(path=str(tmp_path / "feature-change.png"))
        browser.close()
    assert map_element is not None
    assert "Thang Le Quoc" in attribution
    left = [u for u in requests if u.startswith(("http:", "https:", "ws:", "wss:"))
            and re.match(r"^[a-z]+://([^/:]+)", u).group(1) not in LOCAL_HOSTS]
    assert left == [], f"requests left the machine: {left}"
    assert any(u.endswith("map_ui/vendor/ol/ol.js") for u in requests)
    assert any("basemap.geojson" in u for u in requests)
    # Chromium asks for /favicon.ico on its own; the admin has none. Anything else failing is a bug.
    failures = [f for f in failures if not f.endswith("/favicon.ico")]
    assert failures == []
    assert [e for e in console_errors if "404" not in e or failures] == []
