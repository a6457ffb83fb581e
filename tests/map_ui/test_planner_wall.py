# SPDX-License-Identifier: AGPL-3.0-or-later
"""Planner tools, the time slider and the video wall in a real Chromium."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

import psycopg

from tests.map_ui.support import NGO_MON, _database_url, open_map, remote, save, wait_page

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
