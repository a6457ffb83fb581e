# SPDX-License-Identifier: AGPL-3.0-or-later
"""The 3D map page in a real Chromium: the city renders, layers toggle, both languages, offline."""
from __future__ import annotations

import pytest

from tests.map_ui.support import open_map, pixel_share, remote, save, wait_tiles

# The mark makes pytest-django set up the test database (it only does for marked tests);
# the tests themselves never write: the platform runs in other processes.
pytestmark = pytest.mark.django_db

BUILDINGS = "hue-buildings"


def _only(page, keep: set[str]) -> None:
    """Untick every layer in the panel except ``keep``, as a user would."""
    for toggle in page.locator("input.layer-toggle").all():
        if (toggle.get_attribute("data-layer") in keep) != toggle.is_checked():
            toggle.click()


def test_the_page_draws_the_3d_city_from_local_tiles_with_attribution_and_nothing_remote(stack, browser):
    page, requests = browser.page(stack)
    open_map(page, stack.base + "/map/")
    wait_tiles(page)
    whole = save(page, "city-vi")
    # The centre of the view (the citadel and the river banks) is drawn, not left blank.
    assert pixel_share(page, whole, (350, 150, 500, 500)) > 0.2

    _only(page, {BUILDINGS})
    # Only the buildings (events are drawn over every layer; hidden layers are not made at all).
    page.wait_for_function("() => citytwin.app.deck.props.layers.filter(l => l.props.visible !== false)"
                           ".map(l => l.id).filter(id => !id.startsWith('events')).join() === 'hue-buildings'",
                           timeout=30000)
    wait_tiles(page)
    page.wait_for_timeout(1500)                       # a couple of software-rendered frames
    buildings = save(page, "buildings-only")
    share = pixel_share(page, buildings, (350, 150, 500, 500))
    assert share > 0.03, f"extruded buildings cover only {share:.1%} of the city centre"
    extruded = page.evaluate("citytwin.app.deck.props.layers.find(l => l.id === 'hue-buildings').props.extruded")
    assert extruded is True

    attribution = page.locator("#attribution").inner_text()
    assert "OpenStreetMap" in attribution
    assert page.evaluate("citytwin.errors") == []
    assert remote(requests) == [], f"requests left 127.0.0.1: {remote(requests)[:5]}"
    assert any("/tiles/hue-buildings/" in u for u in requests), "the buildings come from our vector tiles"
    page.context.close()


def test_unticking_a_layer_hides_its_features_on_the_map(stack, browser):
    page, requests = browser.page(stack)
    open_map(page, stack.base + "/map/")
    air = stack.devices.layers["air"].slug
    page.wait_for_function(f"citytwin.app.layer('{air}') && citytwin.app.layer('{air}').features.size === 3")
    # Where the first air station is on screen, and what deck.gl picks there.
    pick = f"""() => {{
        const app = citytwin.app, f = app.layer('{air}').features.get('aq-1');
        const [x, y] = app.deck.getViewports()[0].project(f.geometry.coordinates);
        const hit = app.deck.pickObject({{x, y, radius: 6, layerIds: ['{air}']}});
        return hit ? hit.object.id : null;
    }}"""
    page.wait_for_function(f"({pick})() === 'aq-1'", timeout=30000)

    page.locator(f"input.layer-toggle[data-layer='{air}']").click()

    page.wait_for_function(f"({pick})() === null", timeout=30000)
    assert page.evaluate(f"!citytwin.app.deck.props.layers.some(l => l.id === '{air}' && l.props.visible !== false)")
    save(page, "layer-hidden")
    assert remote(requests) == []
    page.context.close()


def test_the_page_is_vietnamese_first_and_switches_to_english(stack, browser):
    page, requests = browser.page(stack, locale="vi-VN")
    open_map(page, stack.base + "/map/")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("#layer-panel h2").inner_text() == "Lớp dữ liệu"
    assert "Công trình xây dựng" in page.locator("#layer-list").inner_text()
    labels = page.evaluate("citytwin.app.layer('hue-wards').labels.map(l => l.text)")
    assert any("Phú Xuân" in label for label in labels), labels[:5]
    save(page, "lang-vi")

    page.select_option("#lang-select", "en")
    page.wait_for_url("**/map/")
    page.wait_for_function("window.citytwin && window.citytwin.ready", timeout=90000)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#layer-panel h2").inner_text() == "Layers"
    assert "Buildings" in page.locator("#layer-list").inner_text()
    assert page.locator("#alerts-title, #alert-panel h2").first.inner_text().startswith("Alerts")
    save(page, "lang-en")
    assert remote(requests) == []
    page.context.close()


def test_the_city_draws_before_anything_else_loads_and_ward_names_come_from_the_labels_endpoint(stack, browser):
    page, requests = browser.page(stack)
    open_map(page, stack.base + "/map/")
    wait_tiles(page)
    # The layer list is in the page: no /collections round trip precedes the first frame.
    assert not [u for u in requests if u.split("?")[0].endswith("/collections")], "layer list fetched"
    # The first frame drew the city's tiles only; points, labels and events came after it.
    first = page.evaluate("citytwin.firstRender")
    tiles_in = page.evaluate("Math.max(...citytwin.app.layers.filter(l => l.visible && l.mode === 'tiles')"
                             ".map(l => l.tileArrived))")
    assert first >= tiles_in, "the first render waits for the city's tiles"
    later = page.evaluate("""() => performance.getEntriesByType('resource')
        .filter(r => /\\/(items|labels)(\\?|$)|\\/api\\/events/.test(r.name)).map(r => r.startTime)""")
    assert later and min(later) >= first, "layer data is asked for after the city's first frame"
    # Ward names: one point per ward from /labels (a few KB), not every outline from /items.
    page.wait_for_function("citytwin.app.layer('hue-wards').labels?.length >= 30", timeout=60000)
    assert any("/collections/hue-wards/labels" in u for u in requests)
    assert not any("/collections/hue-wards/items" in u for u in requests)
    assert page.evaluate("citytwin.app.deck.props.layers.some(l => l.id === 'hue-wards--labels')")
    assert remote(requests) == []
    page.context.close()
