# SPDX-License-Identifier: AGPL-3.0-or-later
"""A kepler.gl map of a query result as one HTML file that opens offline.

``keplergl`` 0.4.0's own ``save_to_html()`` loads kepler.gl, React and the
base maps from CDNs, so it is blank without internet. Its wheel also ships
``keplergl/static/widget.js``: the Jupyter widget as one self-contained ES
module (React + kepler.gl + MapLibre 4.7.1, 12 MB). We inline that module
and mount it with the few methods of a widget model it calls (``get``,
``set``, ``on``, ``off``, ``save_changes``, ``send``), with the data in the
shape ``keplergl.serializers.data_to_json`` gives a GeoJSON dict.

The base map is a local MapLibre style with the city's ward outlines and no
symbol layers: MapLibre needs a ``glyphs`` URL for any label layer, and a
remote one would defeat the point. A ``Content-Security-Policy`` allows no
network at all (only inline code, ``data:`` and ``blob:``), and a small
guard refuses ``fetch`` of anything else, so kepler's start-up request for
its default CARTO style never leaves the machine.

This relies on the widget's internals: ``keplergl`` is pinned in
``pyproject.toml`` and ``tests/layers/test_exports_kepler.py`` renders a
file in headless Chromium and checks the canvas; upgrade only with it green.
"""
from __future__ import annotations

import importlib.util
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from twin.models import AdminLevel, City

logger = logging.getLogger(__name__)

KEPLER_PACKAGE = "keplergl"
OUTLINE_TOLERANCE_DEG = 0.0002  # about 20 m at Huế's latitude: orientation only
BACKGROUND = "#0e1726"
# No network: only inline code, data: and blob: URLs (the widget's module and workers are blobs).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline' 'wasm-unsafe-eval' blob:; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src data: blob:; worker-src blob:; child-src blob:; "
    "base-uri 'none'; form-action 'none'"
)
STYLE_ID = "citytwin-offline"


def _static_dir() -> Path:
    """``keplergl/static`` of the installed wheel, found without importing it (that pulls in IPython)."""
    spec = importlib.util.find_spec(KEPLER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the keplergl package is not installed (pip install keplergl==0.4.0)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@lru_cache(maxsize=1)
def widget_assets() -> tuple[str, str]:
    """(widget.js, widget.css) of the installed wheel, read once per process."""
    static = _static_dir()
    return (static / "widget.js").read_text(encoding="utf-8"), (static / "widget.css").read_text(encoding="utf-8")


def script_json(value: Any) -> SafeString:
    """JSON safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and JS line separators escaped.

    >>> str(script_json({"a": "</script><!--"}))
    '{"a": "\\\\u003c/script\\\\u003e\\\\u003c!--"}'
    """
    text = json.dumps(value, ensure_ascii=False, default=str)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return mark_safe(text)  # noqa: S308 -- escaped above for the script data state


def city_outlines(city: City | None) -> dict[str, Any] | None:
    """The city's province and ward outlines, simplified, as a GeoJSON FeatureCollection."""
    if city is None or city.province_id is None:
        return None
    sql = ("SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg("
           "json_build_object('type', 'Feature', 'properties', json_build_object('code', a.code, 'level', a.level), "
           "'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, %(tolerance)s), 6)::json) "
           "ORDER BY a.level, a.code), '[]'::json))::text FROM twin_adminarea a "
           "WHERE a.id = %(province)s OR (a.parent_id = %(province)s AND a.level = %(ward)s)")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tolerance": OUTLINE_TOLERANCE_DEG, "province": city.province_id,
                             "ward": int(AdminLevel.WARD)})
        return json.loads(cursor.fetchone()[0])


def base_style(outlines: dict[str, Any] | None) -> dict[str, Any]:
    """A MapLibre style with a plain background and admin outlines: no tiles, glyphs, sprites or labels."""
    layers: list[dict[str, Any]] = [{"id": "background", "type": "background",
                                     "paint": {"background-color": BACKGROUND}}]
    sources: dict[str, Any] = {}
    if outlines and outlines.get("features"):
        sources["admin"] = {"type": "geojson", "data": outlines}
        layers += [
            {"id": "admin-fill", "type": "fill", "source": "admin", "paint": {"fill-color": "#15243a"}},
            {"id": "admin-line", "type": "line", "source": "admin",
             "paint": {"line-color": "#5b7aa5", "line-width": ["match", ["get", "level"], 1, 2, 0.8]}},
        ]
    return {"version": 8, "name": "CityTwin offline", "sources": sources, "layers": layers}


def kepler_config(style: dict[str, Any], dataset: str, color_by: str | None = None) -> dict[str, Any]:
    """kepler.gl v1 config: our inline base style (a ``style`` object is used as is, never fetched).

    With ``color_by``, one GeoJSON layer coloured by that numeric property in
    quantiles: a choropleth (per-ward results); otherwise kepler picks layers itself.
    """
    entry = {"id": STYLE_ID, "label": "CityTwin (offline)", "url": "", "icon": "", "custom": True,
             "layerGroups": [], "style": style}
    config: dict[str, Any] = {"mapStyle": {"styleType": STYLE_ID, "topLayerGroups": {}, "visibleLayerGroups": {},
                                           "mapStyles": {STYLE_ID: entry}}}
    if color_by:
        layer = {"id": "choropleth", "type": "geojson",
                 "config": {"dataId": dataset, "label": color_by, "columns": {"geojson": "_geojson"},
                            "isVisible": True, "visConfig": {"opacity": 0.75, "filled": True, "stroked": True,
                                                             "thickness": 0.5, "strokeColor": [200, 210, 225]}},
                 "visualChannels": {"colorField": {"name": color_by, "type": "real"}, "colorScale": "quantile"}}
        config["visState"] = {"layers": [layer]}
    return {"version": "v1", "config": config}


def kepler_html(geojson: dict[str, Any], *, dataset: str, title: str, attribution: str,
                city: City | None = None, color_by: str | None = None) -> str:
    """The whole map page: widget module, data, config and attribution in one UTF-8 HTML file.

    Parameters
    ----------
    geojson
        The result as a GeoJSON FeatureCollection (what the GeoJSON export writes).
    dataset
        The dataset's label in kepler's side panel.
    title, attribution
        Shown on top of the map; the attribution is required by the data's licences.
    city
        Whose ward outlines draw the base map (none: a plain background).
    color_by
        A numeric property to colour the features by (a choropleth).
    """
    script, css = widget_assets()
    # The shape keplergl.serializers.serialize_dataset gives a GeoJSON dict.
    data = {dataset: {"id": dataset, "data": geojson, "format": "geojson"}}
    model = {"data": data, "config": kepler_config(base_style(city_outlines(city)), dataset, color_by), "height": 600,
             "mapbox_token": "", "theme": "", "app_name": "CityTwin"}
    basemap = getattr(settings, "ADMIN_BASEMAP_ATTRIBUTION", "")
    context = {"title": title, "attribution": attribution, "basemap_attribution": basemap if city else "",
               "csp": CONTENT_SECURITY_POLICY, "css": mark_safe(css.replace("</", "<\\/")),  # noqa: S308
               "model": script_json(model), "widget": script_json(script), "count": len(geojson.get("features", []))}
    return render_to_string("layers/export/kepler.html", context)
