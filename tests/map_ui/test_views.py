# SPDX-License-Identifier: AGPL-3.0-or-later
"""The map page as the server renders it: config, rights, languages, offline assets."""
from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from map_ui.catalogue import STRINGS, catalogue

pytestmark = pytest.mark.django_db


def _config(response) -> dict:
    match = re.search(r'<script id="map-config" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, "the page carries its start-up config"
    return json.loads(match.group(1))


def _operator(client):
    user = get_user_model().objects.create_user("map-operator")
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    client.force_login(user)
    return user


def test_the_page_opens_on_the_default_city_in_vietnamese_for_anyone(client, hue):
    response = client.get("/map/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    config = _config(response)
    assert config["lang"] == "vi" and config["mode"] == "console"
    assert config["city"]["slug"] == "hue" and config["city"]["name_vi"] == hue.name_vi
    assert config["city"]["bounds"][0] < config["city"]["view"]["longitude"] < config["city"]["bounds"][2]
    assert config["strings"]["layers"] == "Lớp dữ liệu"
    assert config["user"] == {"name": None, "read_events": False, "handle_events": False, "read_private": False}


def test_an_operator_gets_the_rights_the_console_needs(client, hue):
    _operator(client)
    user = _config(client.get("/map/"))["user"]
    assert user == {"name": "map-operator", "read_events": True, "handle_events": True, "read_private": True}


def test_the_page_carries_the_layer_list_the_user_may_read_as_collections_gives_it(client, hue):
    def ids(config):
        return {c["id"] for c in config["collections"]}

    anonymous = _config(client.get("/map/"))
    public = client.get("/collections").json()["collections"]
    # The same documents as /collections (feature counts included), minus observation series.
    assert ids(anonymous) == {c["id"] for c in public if "." not in c["id"]}
    wards = next(c for c in anonymous["collections"] if c["id"] == "hue-wards")
    assert wards["x-citytwin"]["features"] >= 30 and wards["x-citytwin"]["kind"] == "admin_area"
    _operator(client)
    operator = _config(client.get("/map/"))
    assert ids(anonymous) < ids(operator), "private layers only for a user who may read them"


def test_the_language_switch_sets_english_for_the_page_and_its_script(client, hue):
    response = client.post("/map/i18n/setlang/", {"language": "en", "next": "/map/"})
    assert response.status_code == 302 and response["Location"] == "/map/"
    page = client.get("/map/")
    config = _config(page)
    assert config["lang"] == "en" and config["strings"]["layers"] == "Layers"
    assert '<html lang="en">' in page.content.decode()


def test_every_asset_of_the_page_is_served_by_us(client, hue):
    html = client.get("/map/").content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "/static/map_ui/app/map.js" in urls and "/static/map_ui/app/map.css" in urls


def test_the_wall_page_has_no_controls(client, hue):
    html = client.get("/map/wall/").content.decode()
    assert _config(client.get("/map/wall/"))["mode"] == "wall"
    assert 'id="kpis"' in html and 'id="ticker"' in html
    assert 'id="layer-list"' not in html and 'id="search"' not in html


def test_the_login_page_signs_an_operator_in_and_returns_to_the_map(client, hue):
    user = get_user_model().objects.create_user("map-login", password="a-long-test-password-42")
    assert client.get("/map/login/").status_code == 200
    response = client.post("/map/login/", {"username": user.username, "password": "a-long-test-password-42",
                                           "next": "/map/"})
    assert response.status_code == 302 and response["Location"] == "/map/"
    assert _config(client.get("/map/"))["user"]["name"] == "map-login"


def test_only_get_is_allowed_on_the_page(client, hue):
    assert client.post("/map/").status_code == 405


def test_every_label_has_both_languages():
    assert all(vi and en for vi, en in STRINGS.values())
    assert catalogue("en-gb")["alerts"] == "Alerts" and catalogue("vi")["alerts"] == "Cảnh báo"
