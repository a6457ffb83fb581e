# SPDX-License-Identifier: AGPL-3.0-or-later
"""Saved video-wall views: stored per city, loaded from the city's data file, read by wall users."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from map_ui.models import WallView
from map_ui.wall import FILE_NAME, read_views_file

pytestmark = pytest.mark.django_db


def _login(client, role: str | None):
    user = get_user_model().objects.create_user(f"wall-{role or 'nobody'}")
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)
    return user


def test_the_city_data_file_gives_hue_its_default_views_in_order(hue):
    """`twin load-city` (run once per test session) loaded fixtures/cities/hue/wall_views.toml."""
    specs = read_views_file(Path(settings.CITY_FIXTURES_DIR) / "hue" / FILE_NAME)
    stored = list(WallView.objects.filter(city=hue))
    assert [v.name_vi for v in stored] == [s.name_vi for s in specs] and len(stored) >= 3
    assert all(2 <= v.dwell_s <= 3600 and -180 <= v.longitude <= 180 for v in stored)


@pytest.mark.parametrize("role", ["operator", "leader", "responder"])
def test_wall_users_read_the_views_of_the_city_in_wall_order(client, hue, role):
    WallView.objects.create(city=hue, name_vi="Cầu Trường Tiền (thử)", longitude=107.589, latitude=16.466,
                            zoom=16, dwell_s=5, order=-1, layers=["hue-buildings"])
    _login(client, role)
    response = client.get("/map/wall/views", {"city": "hue"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["city"] == "hue" and body["numberReturned"] == len(body["views"]) >= 2
    first = body["views"][0]
    assert (first["name_vi"], first["layers"], first["dwell_s"]) == ("Cầu Trường Tiền (thử)", ["hue-buildings"], 5)
    assert set(first) >= {"longitude", "latitude", "zoom", "pitch", "bearing", "order", "name_en"}
    assert client.get("/map/wall/views").json()["views"] == body["views"], "the default city without ?city="


def test_anonymous_visitors_are_401_and_roles_without_alerts_403(client, hue):
    response = client.get("/map/wall/views")
    assert response.status_code == 401 and response.json()["code"]
    _login(client, "planner")
    assert client.get("/map/wall/views").status_code == 403


@pytest.mark.parametrize("query, status", [({"city": "atlantis"}, 404), ({"city": "a/b"}, 400),
                                           ({"town": "hue"}, 400)])
def test_bad_input_is_a_clear_4xx(client, hue, query, status):
    _login(client, "operator")
    response = client.get("/map/wall/views", query)
    assert response.status_code == status and response.json()["description"]


def test_only_get_is_allowed(client, hue):
    _login(client, "operator")
    assert client.post("/map/wall/views", {}).status_code == 405


def test_a_view_naming_an_unknown_layer_is_refused_by_the_admin_form_check(hue):
    view = WallView(city=hue, name_vi="Sai lớp", longitude=107.5, latitude=16.4, layers=["no-such-layer"])
    with pytest.raises(ValidationError, match="no-such-layer"):
        view.full_clean()
    with pytest.raises(ValidationError):
        WallView(city=hue, name_vi="Quá nghiêng", longitude=107.5, latitude=16.4, pitch=89).full_clean()


def test_the_load_command_refuses_a_bad_file_and_writes_nothing(hue, tmp_path):
    before = WallView.objects.count()
    bad = tmp_path / "views.toml"
    bad.write_text('[[views]]\nname_vi = "x"\ncenter = [107.5, 16.4]\ndwell_s = 0\n', encoding="utf-8")
    with pytest.raises(CommandError, match="dwell_s"):
        call_command("load_wall_views", "hue", file=bad, verbosity=0)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[[views]]\nname_vi = "x"\ncenter = [107.5, 16.4]\nlayers = ["nope"]\n', encoding="utf-8")
    with pytest.raises(CommandError, match="nope"):
        call_command("load_wall_views", "hue", file=unknown, verbosity=0)
    assert WallView.objects.count() == before


def test_reloading_updates_views_by_name_and_keeps_the_administrators_own(hue, tmp_path):
    own = WallView.objects.create(city=hue, name_vi="Của quản trị", longitude=107.6, latitude=16.45)
    path = tmp_path / "views.toml"
    path.write_text('[[views]]\nname_vi = "Toàn thành phố Huế"\ncenter = [107.6, 16.46]\nzoom = 12\n', encoding="utf-8")
    call_command("load_wall_views", "hue", file=path, verbosity=0)
    assert WallView.objects.get(city=hue, name_vi="Toàn thành phố Huế").zoom == 12
    assert WallView.objects.filter(pk=own.pk).exists()
