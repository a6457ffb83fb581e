# SPDX-License-Identifier: AGPL-3.0-or-later
"""The kepler.gl export renders offline in a real headless Chromium.

The file is opened from disk (``file://``) with every host name resolving
to nothing; the test records every request the page and its workers make
and requires all of them to be local (``file:``, ``data:``, ``blob:``).
The map must then show the features: the screenshot's centre must hold the
choropleth's colours, not only the base map's. Debian's ``/usr/bin/chromium``
is driven through Playwright; a missing browser FAILS the test (never
``playwright install``, never a skip).

Run with ``--basetemp=DIR`` to keep the screenshot (``DIR/.../kepler.png``).
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from layers import registry
from layers.kepler import BACKGROUND

pytestmark = pytest.mark.django_db

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]
LOCAL_SCHEMES = ("file:", "data:", "blob:")
RENDER_TIMEOUT_MS = 120_000

# Counts pixels in the middle of a PNG that are far from every base-map colour (in a blank page).
_COUNT_FEATURE_PIXELS = """async ([png, base]) => {
  const img = new Image();
  img.src = "data:image/png;base64," + png;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const x0 = Math.round(img.width * 0.3), y0 = Math.round(img.height * 0.3);
  const w = Math.round(img.width * 0.4), h = Math.round(img.height * 0.4);
  const px = ctx.getImageData(x0, y0, w, h).data;
  let feature = 0;
  for (let i = 0; i < px.length; i += 4) {
    const far = base.every(([r, g, b]) => Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) > 60);
    if (far) feature++;
  }
  return feature / (w * h);
}"""


def _rgb(hex_colour: str) -> list[int]:
    return [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]


@pytest.fixture
def kepler_file(client, tmp_path) -> Path:
    registry.clear_caches()
    response = client.get("/collections/hue-buildings/per-ward", {"f": "kepler"})
    assert response.status_code == 200, response.content[:300]
    path = tmp_path / "hue-buildings-per-ward.html"
    path.write_bytes(response.content)
    return path


def test_kepler_export_renders_offline_in_chromium_without_any_request_leaving(kepler_file, tmp_path):
    assert CHROMIUM.exists(), "Debian's chromium is required for this test (apt-get install chromium)"
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 800})
            context.on("request", lambda request: requests.append(request.url))
            page = context.new_page()
            page.on("websocket", lambda ws: requests.append(ws.url))
            page.goto(kepler_file.as_uri())
            page.wait_for_selector("canvas.maplibregl-canvas", timeout=RENDER_TIMEOUT_MS)
            page.wait_for_function("document.body.dataset.ctMounted === 'true'", timeout=RENDER_TIMEOUT_MS)
            # kepler adds the data once its store has registered the map (a few seconds with SwiftShader).
            page.wait_for_function("document.querySelectorAll('canvas').length >= 2", timeout=RENDER_TIMEOUT_MS)
            page.wait_for_timeout(8_000)
            png = page.screenshot(path=str(tmp_path / "kepler.png"))
            attribution = page.inner_text("#ct-attribution")
            blank = context.new_page()
            base = [_rgb(BACKGROUND), _rgb("#15243a"), _rgb("#5b7aa5")]
            share = blank.evaluate(_COUNT_FEATURE_PIXELS, [base64.b64encode(png).decode(), base])
        finally:
            browser.close()
    remote = [url for url in requests if not url.startswith(LOCAL_SCHEMES) and url != "about:blank"]
    assert remote == [], f"requests left the page: {json.dumps(remote[:5])}"
    assert "OpenStreetMap" in attribution and "Vietnamese Provinces" in attribution
    assert share > 0.2, f"only {share:.1%} of the map centre shows features (see {tmp_path / 'kepler.png'})"
