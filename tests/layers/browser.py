# SPDX-License-Identifier: AGPL-3.0-or-later
"""Headless Chromium for offline-rendering tests (kepler.gl and pydeck exports).

Debian's ``/usr/bin/chromium`` is driven through Playwright from PyPI; never
``playwright install``. A missing browser fails the calling test, it never
skips it. Every host name resolves to nothing, and every request the page
and its workers make is recorded so tests can require all of them to be
local (``file:``, ``data:``, ``blob:``).
"""
from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
VIEWPORT = {"width": 1200, "height": 800}

# Share of the pixels of a PNG region near ``near`` (or, without it, far from every ``base`` colour).
_COLOUR_SHARE = """async ([png, near, base, box]) => {
  const img = new Image();
  img.src = "data:image/png;base64," + png;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const [x0, y0, w, h] = [box[0] * img.width, box[1] * img.height, box[2] * img.width, box[3] * img.height]
    .map(Math.round);
  const px = ctx.getImageData(x0, y0, w, h).data;
  const dist = (i, [r, g, b]) => Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b);
  let hits = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (near ? dist(i, near) < 60 : base.every((c) => dist(i, c) > 60)) hits++;
  }
  return hits / (w * h);
}"""


def rgb(hex_colour: str) -> list[int]:
    return [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]


@contextlib.contextmanager
def offline_page(path: Path, requests: list[str]) -> Iterator[Page]:
    """``path`` opened from disk in Chromium; ``requests`` collects every URL asked for."""
    assert CHROMIUM.exists(), "Debian's chromium is required for this test (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.on("request", lambda request: requests.append(request.url))
            page = context.new_page()
            page.on("websocket", lambda ws: requests.append(ws.url))
            page.goto(path.as_uri())
            yield page
        finally:
            browser.close()


def remote(requests: list[str]) -> list[str]:
    return [url for url in requests if not url.startswith(LOCAL_SCHEMES)]


def colour_share(page: Page, png: bytes, *, near: list[int] | None = None, base: list[list[int]] = (),
                 box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)) -> float:
    """Measured in a blank page of the same browser (the map page's CSP forbids nothing here, but stays clean)."""
    blank = page.context.new_page()
    try:
        return blank.evaluate(_COLOUR_SHARE, [base64.b64encode(png).decode(), near, list(base), list(box)])
    finally:
        blank.close()
