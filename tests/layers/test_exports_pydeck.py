# SPDX-License-Identifier: AGPL-3.0-or-later
"""pydeck for notebooks: a query result drawn by ``layers.notebook.deck_html`` renders offline in Chromium."""
from __future__ import annotations

import json

import pydeck as pdk
import pytest

from layers import registry
from layers.notebook import deck_html
from tests.layers.browser import colour_share, offline_page, remote

pytestmark = pytest.mark.django_db

ORANGE = [230, 120, 40]


def test_a_query_result_drawn_with_pydeck_renders_offline(client, tmp_path):
    registry.clear_caches()
    buildings = json.loads(client.get("/collections/hue-buildings/area/19753", {"limit": 2000}).content)
    wards = json.loads(client.get("/collections/hue-wards/items", {"limit": 100}).content)
    deck = pdk.Deck(
        layers=[pdk.Layer("GeoJsonLayer", wards, stroked=True, filled=False, get_line_color=[91, 122, 165],
                          line_width_min_pixels=1),
                pdk.Layer("GeoJsonLayer", buildings, get_fill_color=ORANGE, pickable=True)],
        initial_view_state=pdk.ViewState(longitude=107.58, latitude=16.468, zoom=14), map_provider=None)
    path = tmp_path / "deck.html"
    path.write_text(deck_html(deck, title="Công trình · Phú Xuân", attribution=buildings["attribution"]),
                    encoding="utf-8")
    requests: list[str] = []
    with offline_page(path, requests) as page:
        page.wait_for_function("document.body.dataset.ctMounted === 'true'", timeout=60_000)
        page.wait_for_selector("#deck-container canvas", timeout=60_000)
        page.wait_for_timeout(3_000)
        png = page.screenshot(path=str(tmp_path / "deck.png"))
        share = colour_share(page, png, near=ORANGE)
    assert remote(requests) == [], requests
    assert share > 0.002, f"only {share:.2%} of the map shows buildings (see {tmp_path / 'deck.png'})"
