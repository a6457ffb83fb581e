# SPDX-License-Identifier: AGPL-3.0-or-later
"""Planner tools, the time slider and the video wall in a real Chromium."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

import psycopg

from tests.map_ui.support import NGO_MON, _database_url, drawn_colour, open_map, remote, save, wait_page

pytestmark = pytest.mark.django_db


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _screen(page, lon: float, lat: float) -> tuple[float, float]:
    return tuple(page.evaluate(f"citytwin.app.deck.getViewports()[0].project([{lon}, {lat}])"))


def test_a_drawn_radius_counts_the_chosen_layers_inside_it_and_offers_exports(stack, browser):
    page, requests = browser.page(stack)
    open_map(page, stack.base + "/map/")
    air = stack.devices.layers["air"].slug
    page.select_option("#planner-layers", [air, "hue-hotels"])
    page.click("#draw-radius")
    centre = _screen(page, *NGO_MON)
    edge = _screen(page, NGO_MON[0] + 0.006, NGO_MON[1])       # ~640 m east
    page.mouse.click(*centre)
    page.wait_for_function("citytwin.app.planner.points.length === 1", timeout=30000)
    page.mouse.click(*edge)
    block = page.wait_for_selector(f"#planner-result .planner-layer[data-layer='{air}']", timeout=60000)
    assert block.get_attribute("data-count") == "3", "all three test stations lie within ~640 m of Ngọ Môn"
    radius = page.evaluate("citytwin.app.planner.shape.radius")
    expected = page.evaluate(f"""fetch('/collections/hue-hotels/within?lon={NGO_MON[0]}&lat={NGO_MON[1]}'
        + '&radius_m=' + Math.round({radius}) + '&limit=1000').then(r => r.json()).then(b => b.numberReturned)""")
    # The click lands on a pixel, not the exact coordinate: compare with the radius actually drawn.
    hotels = page.locator("#planner-result .planner-layer[data-layer='hue-hotels']")
    assert abs(int(hotels.get_attribute("data-count")) - expected) <= 2
    formats = {a.get_attribute("class").split("export-")[1] for a in block.query_selector_all("a.export")}
    assert {"geojson", "gpkg", "kepler"} <= formats
    href = block.query_selector("a.export-gpkg").get_attribute("href")
    status = page.evaluate(f"fetch({href!r}).then(r => r.status)")
    assert status == 200
    save(page, "planner-radius")
    assert remote(requests) == []
    page.context.close()


def test_the_ward_choropleth_colours_every_ward_of_the_city(stack, browser):
    page, requests = browser.page(stack)
    open_map(page, stack.base + "/map/")
    page.select_option("#choropleth-layer", "hue-hotels")
    page.wait_for_function("citytwin.app.extraLayers.choropleth?.[0]?.props.data.features.length >= 30", timeout=60000)
    save(page, "choropleth")
    assert remote(requests) == []
    page.context.close()


def test_the_time_slider_replays_events_of_the_last_24_hours(stack, browser):
    page, requests = browser.page(stack)
    open_map(page, stack.base + "/map/")
    page.wait_for_function("citytwin.live === 'on'", timeout=60000)
    known = page.evaluate("[...citytwin.app.store.events.keys()]")
    stack.publisher.publish(stack.devices.topic("fa-1", "alert"),
                            {"type": "Alert", "dateIssued": _iso(datetime.now(timezone.utc)), "category": "fire",
                             "alarm": True})
    event_id = page.wait_for_function(f"""() => {{
        const known = new Set({known});
        return [...citytwin.app.store.events.keys()].find((id) => !known.has(id)) ?? null;
    }}""", timeout=30000).json_value()

    page.locator("#time-slider").fill("1380")              # one hour ago
    wait_page(page, "citytwin.moment !== null && citytwin.app.store.cutoff !== null", 30, "the moment an hour ago")
    assert page.locator(f"#alert-list li[data-event-id='{event_id}']").count() == 0, "not yet happened then"
    page.locator("#time-slider").fill("1440")              # now: live again
    page.wait_for_selector(f"#alert-list li[data-event-id='{event_id}']", timeout=30000)
    assert page.evaluate("citytwin.moment") is None
    assert remote(requests) == []
    page.context.close()


def _backdate(event_id: int, occurred_min_ago: int, acknowledged_min_ago: int) -> None:
    """Move an event's history into the past, committed (the server reads it from its own process)."""
    with psycopg.connect(_database_url(), autocommit=True) as db:
        db.execute("UPDATE twin_geoevent SET occurred_at = now() - make_interval(mins => %s) WHERE id = %s",
                   [occurred_min_ago, event_id])
        db.execute("UPDATE twin_geoeventtransition SET at = now() - make_interval(mins => %s) "
                   "WHERE event_id = %s AND to_status <> 'acknowledged'", [occurred_min_ago, event_id])
        db.execute("UPDATE twin_geoeventtransition SET at = now() - make_interval(mins => %s) "
                   "WHERE event_id = %s AND to_status = 'acknowledged'", [acknowledged_min_ago, event_id])


def _event_row(event_id: int) -> str:
    """The event and its history as the server has them (for a wait's failure message)."""
    with psycopg.connect(_database_url(), autocommit=True) as db:
        event = db.execute("SELECT status, occurred_at, updated_at, now() FROM twin_geoevent WHERE id = %s",
                           [event_id]).fetchone()
        steps = db.execute("SELECT to_status, at FROM twin_geoeventtransition WHERE event_id = %s ORDER BY at",
                           [event_id]).fetchall()
    return f"event {event_id} in the database: {event}, history {steps}"


def test_the_replay_shows_each_event_with_the_status_it_had_at_that_moment(stack, browser):
    page, requests = browser.page(stack)
    open_map(page, stack.base + "/map/")
    page.wait_for_function("citytwin.live === 'on'", timeout=60000)
    # A fire alarm of a panel no other test sets off, and the event it opens, no other. (The CI
    # failure: this test took fa-1, whose alarm the time-slider test had left open, picked that
    # older event at once, backdated it, and then the worker handled this publish as a further
    # alarm of the open episode, which rewrites occurred_at to the episode's start: the event had
    # "not yet happened" an hour ago and never appeared in the replay.)
    known = page.evaluate("[...citytwin.app.store.events.keys()]")
    stack.publisher.publish(stack.devices.topic("fa-2", "alert"),
                            {"type": "Alert", "dateIssued": _iso(datetime.now(timezone.utc)), "category": "fire",
                             "alarm": True})
    event_id = wait_page(page, f"""() => {{
        const known = new Set({known});
        return [...citytwin.app.store.events.values()].find((e) => !known.has(e.id) && e.status === 'new')?.id ?? null;
    }}""", 60, "the fire alarm's new event").json_value()
    page.evaluate(f"citytwin.app.store.transition({event_id}, 'acknowledged', 'replay test')")
    # It happened two hours ago and was acknowledged half an hour ago.
    _backdate(event_id, 120, 30)

    item = f"#alert-list li[data-event-id='{event_id}']"
    page.locator("#time-slider").fill("1380")              # one hour ago: it was still new
    wait_page(page, f"citytwin.app.store.cutoff !== null && !!document.querySelector(\"{item}\")", 60,
              f"event {event_id} listed as it stood an hour ago", context=lambda: _event_row(event_id))
    assert "status-new" in page.locator(item).get_attribute("class"), "status as of the moment, not today's"
    assert any("as_of=" in u for u in requests), "the replay asks the server for the status at that moment"
    page.locator("#time-slider").fill("1425")              # fifteen minutes ago: acknowledged
    wait_page(page, f"document.querySelector(\"{item}\")?.classList.contains('status-acknowledged')", 60,
              f"event {event_id} acknowledged fifteen minutes ago", context=lambda: _event_row(event_id))
    page.locator("#time-slider").fill("1440")              # now: live again
    wait_page(page, "citytwin.moment === null", 60, "the map live again")
    save(page, "replay-as-of")
    assert remote(requests) == []
    page.context.close()


def _past_reading(stack, device: str, minutes_ago: int, values: dict) -> None:
    """A reading stored in the past, committed (the server reads it from its own process)."""
    with psycopg.connect(_database_url(), autocommit=True) as db:
        db.execute("INSERT INTO twin_observation (feature_id, time, values) SELECT id, now() - make_interval(mins => %s), "
                   "%s::jsonb FROM twin_feature WHERE layer_id = %s AND external_id = %s",
                   [minutes_ago, json.dumps(values), stack.devices.layers["air"].pk, device])


def test_the_replay_colours_sensors_by_their_reading_at_that_moment(stack, browser):
    air = stack.devices.layers["air"].slug
    _past_reading(stack, "aq-1", 170, {"pm25": 10.0})     # VN_AQI good: green
    _past_reading(stack, "aq-1", 100, {"pm25": 160.0})    # very unhealthy: purple
    page, requests = browser.page(stack)
    open_map(page, stack.base + "/map/")
    wait_page(page, drawn_colour(air, "aq-1", [143, 63, 151]), 60, "aq-1 purple now (its latest reading)")

    page.locator("#time-slider").fill("1290")              # 150 minutes ago
    wait_page(page, drawn_colour(air, "aq-1", [0, 228, 0]), 60, "aq-1 green as it read 150 minutes ago",
              context=lambda: page.evaluate(f"JSON.stringify([...(citytwin.app.layer('{air}').replay?.latest || [])])"))
    assert any("/latest?datetime=" in u for u in requests), "the replay asks for the readings as of the moment"
    page.locator("#time-slider").fill("1380")              # an hour ago
    wait_page(page, drawn_colour(air, "aq-1", [143, 63, 151]), 60, "aq-1 purple an hour ago")
    page.locator("#time-slider").fill("1440")              # now: live values again
    wait_page(page, f"citytwin.moment === null && citytwin.app.layer('{air}').replay === null", 60, "the map live again")
    save(page, "replay-sensors")
    assert remote(requests) == []
    page.context.close()


def test_the_video_wall_shows_kpis_and_the_alert_ticker_without_controls_and_cycles_views(stack, browser):
    page, requests = browser.page(stack, locale="en-GB")
    view = f"{NGO_MON[0]},{NGO_MON[1]},16.5"
    open_map(page, stack.base + f"/map/wall/?view={view}&view=107.60,16.46,14&cycle=3")
    page.wait_for_selector(".kpi[data-kpi='kpi_open'] b", timeout=30000)
    open_alerts = page.evaluate("citytwin.app.store.events.size")
    assert page.locator(".kpi[data-kpi='kpi_open'] b").inner_text() == str(open_alerts)
    assert page.locator("#layer-panel, #alert-list, #search, #planner").count() == 0
    assert page.evaluate("citytwin.app.deck.props.controller") is False
    page.wait_for_function("citytwin.wallView >= 2", timeout=30000)     # moved on to the next saved view
    if open_alerts:
        assert page.locator("#ticker .item[data-event-id]").count() >= 1
    save(page, "wall")
    assert remote(requests) == []
    page.context.close()


def _wall_views(city: str, views: list[tuple]) -> list[int]:
    with psycopg.connect(_database_url(), autocommit=True) as db:
        return [db.execute("INSERT INTO map_ui_wallview (city_id, name_vi, name_en, longitude, latitude, zoom, pitch, "
                           "bearing, layers, dwell_s, \"order\") SELECT id, %s, '', %s, %s, %s, 50, 0, %s::jsonb, 2, %s "
                           "FROM twin_city WHERE slug = %s RETURNING id", [*view, city]).fetchone()[0]
                for view in views]


def test_the_video_wall_cycles_the_views_saved_on_the_server(stack, browser):
    air = stack.devices.layers["air"].slug
    ids = _wall_views("hue", [("mapt-A", NGO_MON[0], NGO_MON[1], 16.5, "[]", -20),
                              ("mapt-B", 107.545, 16.453, 15, json.dumps([air, "hue-buildings"]), -10)])
    try:
        page, requests = browser.page(stack)
        open_map(page, stack.base + "/map/wall/")
        assert page.evaluate("citytwin.wallViews.slice(0, 2)") == ["mapt-A", "mapt-B"]
        # What each cycle showed is logged: under load a 2 s view can come and go between two polls.
        shown = wait_page(page, "(citytwin.wallShown || []).length >= 2 && citytwin.wallShown", 60,
                          "the wall on the server's second view").json_value()
        first, second = shown[0], shown[1]
        assert (first["name"], second["name"]) == ("mapt-A", "mapt-B")
        assert (second["longitude"], second["latitude"]) == (107.545, 16.453)
        assert second["at"] - first["at"] >= 1900, "each view stays its dwell_s (2 s)"
        assert sorted(second["layers"]) == sorted([air, "hue-buildings"]), "the view's layers, and only them"
        assert any("/map/wall/views" in u for u in requests)
        save(page, "wall-server-views")
        assert remote(requests) == []
        page.context.close()
    finally:
        with psycopg.connect(_database_url(), autocommit=True) as db:
            db.execute("DELETE FROM map_ui_wallview WHERE id = ANY(%s)", [ids])
