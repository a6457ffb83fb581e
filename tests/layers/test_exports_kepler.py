# SPDX-License-Identifier: AGPL-3.0-or-later
"""The kepler.gl export renders offline in a real headless Chromium.

The file is opened from disk (``file://``) with every host name resolving
to nothing; every request the page and its workers make must be local
(``file:``, ``data:``, ``blob:``). The map must then show the features: the
screenshot's centre must hold the choropleth's colours, not only the base
map's. A missing browser FAILS the test (see ``tests/layers/browser.py``).

Run with ``--basetemp=DIR`` to keep the screenshot (``DIR/.../kepler.png``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from layers import registry
from layers.kepler import BACKGROUND
from tests.layers.browser import colour_share, offline_page, remote, rgb

pytestmark = pytest.mark.django_db

RENDER_TIMEOUT_MS = 120_000


@pytest.fixture
def kepler_file(client, tmp_path) -> Path:
    registry.clear_caches()
    response = client.get("/collections/hue-buildings/per-ward", {"f": "kepler"})
    assert response.status_code == 200, response.content[:300]
    path = tmp_path / "hue-buildings-per-ward.html"
    path.write_bytes(response.content)
    return path


def test_kepler_export_renders_offline_in_chromium_without_any_request_leaving(kepler_file, tmp_path):
    requests: list[str] = []
    with offline_page(kepler_file, requests) as page:
        page.wait_for_selector("canvas.maplibregl-canvas", timeout=RENDER_TIMEOUT_MS)
        page.wait_for_function("document.body.dataset.ctMounted === 'true'", timeout=RENDER_TIMEOUT_MS)
        # kepler adds the data once its store has registered the map (seconds with SwiftShader).
        page.wait_for_function("document.querySelectorAll('canvas').length >= 2", timeout=RENDER_TIMEOUT_MS)
        page.wait_for_timeout(8_000)
        png = page.screenshot(path=str(tmp_path / "kepler.png"))
        attribution = page.inner_text("#ct-attribution")
        base = [rgb(BACKGROUND), rgb("#15243a"), rgb("#5b7aa5")]
        share = colour_share(page, png, base=base, box=(0.3, 0.3, 0.4, 0.4))
    assert remote(requests) == [], f"requests left the page: {json.dumps(remote(requests)[:5])}"
    assert "OpenStreetMap" in attribution and "Vietnamese Provinces" in attribution
    assert share > 0.2, f"only {share:.1%} of the map centre shows features (see {tmp_path / 'kepler.png'})"
