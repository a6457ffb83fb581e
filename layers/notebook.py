# SPDX-License-Identifier: AGPL-3.0-or-later
"""pydeck maps that open offline, for notebooks and scripts.

``pydeck.Deck.to_html()`` loads deck.gl from a CDN, and even
``to_html(offline=True)`` keeps remote ``<script>``/``<link>`` tags. Here
``deck.to_json()`` goes into a small page of our own with the wheel's
``pydeck/nbextension/static/index.js`` inlined (the UMD bundle that defines
``createDeck``), under a Content-Security-Policy that allows no network.
Use ``map_provider=None`` (no base map tiles) and, for orientation, add the
ward outlines as a layer (``/collections/hue-wards/items``).

>>> page = render_deck_json('{"initialViewState": {"longitude": 107.58, "latitude": 16.46, "zoom": 11}, '
...                         '"layers": []}', title="Thử", attribution="© OSM", bundle="/* deck.gl */")
>>> "Content-Security-Policy" in page and "https://" not in page
True

This module needs only pydeck (no Django), so analysts may copy it into a
notebook. See ``docs/spatial-and-exports.md`` for fetching a query result
with a token.
"""
from __future__ import annotations

import html
import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline' blob:; style-src 'unsafe-inline'; "
                           "img-src data: blob:; connect-src data: blob:; worker-src blob:; base-uri 'none'")

_PAGE = """<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>{title}</title>
<style>
  html, body {{ margin: 0; height: 100%; background: #0e1726; }}
  #deck-container {{ position: absolute; inset: 0; }}
  .ct-attribution {{ position: absolute; bottom: 4px; right: 4px; z-index: 10; background: rgba(255,255,255,.85);
                     font: 11px system-ui, sans-serif; padding: 2px 6px; border-radius: 3px; }}
</style>
</head>
<body>
<div id="deck-container"></div>
<div class="ct-attribution">{attribution}</div>
<script>{bundle}</script>
<script>
  window.ctDeck = createDeck({{container: document.getElementById("deck-container"), jsonInput: {deck},
                               tooltip: true, customLibraries: null, configuration: null}});
  document.body.dataset.ctMounted = "true";
</script>
</body>
</html>
"""


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script>`` (as ``layers.kepler.script_json``; this module needs no Django)."""
    text = json.dumps(value, ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


@lru_cache(maxsize=1)
def pydeck_bundle() -> str:
    """The wheel's ``index.js`` (deck.gl + @deck.gl/json), read once, without its source-map comment."""
    spec = importlib.util.find_spec("pydeck")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pydeck is not installed (pip install 'citytwin[notebook]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "nbextension" / "static" / "index.js"
    text = path.read_text(encoding="utf-8")
    if "</script" in text.lower():  # inlined as is: it must not close its own element
        raise RuntimeError("this pydeck bundle cannot be inlined in a <script> element")
    return text.replace("//# sourceMappingURL=index.js.map", "")


def render_deck_json(deck_json: str, *, title: str = "CityTwin", attribution: str = "",
                     bundle: str | None = None) -> str:
    """The offline page for ``deck.to_json()`` output (``bundle`` defaults to the installed wheel's)."""
    value: Any = json.loads(deck_json)
    return _PAGE.format(csp=CONTENT_SECURITY_POLICY, title=html.escape(title), attribution=html.escape(attribution),
                        bundle=bundle if bundle is not None else pydeck_bundle(), deck=_script_json(value))


def deck_html(deck: Any, *, title: str = "CityTwin", attribution: str = "") -> str:
    """A ``pydeck.Deck`` as one HTML page that draws offline (save it, or show it in an IFrame)."""
    return render_deck_json(deck.to_json(), title=title, attribution=attribution)
