# SPDX-License-Identifier: AGPL-3.0-or-later
"""Say how to build the vendored front-end files when they are missing.

The admin map widget (OpenLayers) and the 3D operations map (deck.gl, bundled
by esbuild) load from our own static files, built from npm by ``make deps``,
never from a CDN, so a checkout where npm never ran would show blank maps. This check names the fix instead.
"""
from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles import finders
from django.core import checks

# Static paths the server needs; produced by `npm run build` in map_ui/.
VENDORED_ASSETS = ("map_ui/vendor/ol/ol.js", "map_ui/vendor/ol/ol.css",
                   "map_ui/app/map.js", "map_ui/app/map.css",
                   "map_ui/fonts/be-vietnam-pro-latin-400-normal.woff2",
                   "map_ui/fonts/be-vietnam-pro-vietnamese-400-normal.woff2")
BUILD_HINT = "Run `make deps`, or by hand: cd map_ui && npm ci && npm run build."


def check_vendored_assets(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    missing = [path for path in VENDORED_ASSETS if not finders.find(path)]
    if not missing:
        return _stale_bundle()
    return [checks.Error(f"front-end build output missing: {', '.join(missing)} (the maps would be blank)",
                         hint=BUILD_HINT, id="map_ui.E001")]


def _stale_bundle() -> list[checks.CheckMessage]:
    """A warning when the map's sources changed after its bundle was built.

    ``make deps`` rebuilds when the npm packages change; a checkout that only
    brought new ``map_ui/src`` files would otherwise serve the old map.
    """
    bundle = finders.find("map_ui/app/map.js")
    sources = Path(__file__).resolve().parent / "src"
    if not bundle or not sources.is_dir():
        return []
    built = Path(bundle).stat().st_mtime
    newer = sorted(p.name for p in sources.rglob("*") if p.is_file() and p.stat().st_mtime > built)
    if not newer:
        return []
    return [checks.Warning(f"the map bundle is older than map_ui/src ({', '.join(newer[:5])})",
                           hint="cd map_ui && npm run build", id="map_ui.W001")]
