// SPDX-License-Identifier: AGPL-3.0-or-later
// Planner tools: draw a polygon or a radius, count and list the features of chosen layers inside
// it (the layers API's /polygon and /within), export that selection (its `alternate` links:
// GeoJSON, GeoPackage, CSV, kepler.gl), and colour the wards by any layer's counts (/per-ward).
import { GeoJsonLayer, PolygonLayer, ScatterplotLayer } from "@deck.gl/layers";
import { getJSON } from "./api.js";
import { config } from "./config.js";
import { byId, el } from "./dom.js";
import { formatNumber, t } from "./i18n.js";

const LIMIT = 1000;
const EARTH_M = 6371008.8;
const FORMATS = {geojson: "GeoJSON", gpkg: "GeoPackage", csv: "CSV", kepler: "kepler.gl"};
// Light to dark orange, five classes (ColorBrewer Oranges).
const RAMP = [[254, 237, 222], [253, 190, 133], [253, 141, 60], [230, 85, 13], [166, 54, 3]];

/** Great-circle distance in metres (the server measures on the spheroid; this sizes the circle). */
export function haversine([lon1, lat1], [lon2, lat2]) {
  const rad = Math.PI / 180;
  const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * EARTH_M * Math.asin(Math.sqrt(a));
}

/** A circle of `radius` metres around `centre` as a closed ring (for drawing only). */
export function circleRing([lon, lat], radius, steps = 64) {
  const dLat = (radius / EARTH_M) * (180 / Math.PI);
  const dLon = dLat / Math.cos((lat * Math.PI) / 180);
  return Array.from({length: steps + 1}, (_, i) => {
    const a = (2 * Math.PI * i) / steps;
    return [lon + dLon * Math.sin(a), lat + dLat * Math.cos(a)];
  });
}

export const polygonWkt = (ring) => `POLYGON((${[...ring, ring[0]].map(([x, y]) => `${x.toFixed(7)} ${y.toFixed(7)}`).join(",")}))`;

class Planner {
  constructor(app) {
    this.app = app;
    this.mode = null;            // "polygon" | "radius" | null
    this.points = [];
    this.shape = null;           // {type: "polygon", ring} | {type: "radius", centre, radius}
    this.root = byId("planner");
  }

  queryable() {
    return this.app.layers.filter((l) => !["admin_area"].includes(l.kind));
  }

  render() {
    const layers = el("select", {id: "planner-layers", multiple: true, size: 5, "aria-label": t("layers")},
      this.queryable().map((l) => el("option", {value: l.id, selected: l.mode === "points" && l.visible && l.kind !== "building"}, l.title)));
    const choropleth = el("select", {id: "choropleth-layer", "aria-label": t("choropleth"),
      onchange: (e) => this.choropleth(e.target.value)},
    el("option", {value: ""}, t("none")), this.queryable().map((l) => el("option", {value: l.id}, l.title)));
    this.hint = el("p", {class: "muted", id: "planner-hint"});
    this.result = el("div", {class: "planner-result", id: "planner-result"});
    this.root.replaceChildren(layers,
      el("div", {class: "planner-tools"},
        el("button", {type: "button", id: "draw-polygon", onclick: () => this.start("polygon")}, t("draw_polygon")),
        el("button", {type: "button", id: "draw-radius", onclick: () => this.start("radius")}, t("draw_radius")),
        el("button", {type: "button", id: "draw-finish", hidden: true, onclick: () => this.finish()}, "✓"),
        el("button", {type: "button", id: "draw-clear", onclick: () => this.clear()}, t("clear"))),
      this.hint, this.result, el("label", {}, t("choropleth"), " ", choropleth));
    this.layerSelect = layers;
  }

  start(mode) {
    this.clear();
    this.mode = mode;
    this.hint.textContent = t(mode === "polygon" ? "draw_hint_polygon" : "draw_hint_radius");
    byId("draw-finish").hidden = mode !== "polygon";
    this.app.deck.setProps({controller: {doubleClickZoom: false}});
  }

  /** Map clicks while drawing; returns true when the click was the tool's. */
  click(info) {
    if (!this.mode || !info.coordinate) return false;
    const point = info.coordinate.slice(0, 2);
    if (this.mode === "radius") {
      this.points.push(point);
      if (this.points.length === 2) {
        this.shape = {type: "radius", centre: this.points[0], radius: haversine(this.points[0], this.points[1])};
        this.done();
      }
    } else if (info.detail >= 2 && this.points.length >= 3) {
      this.finish();
    } else if (info.detail < 2) {
      this.points.push(point);
    }
    this.draw();
    return true;
  }

  finish() {
    if (this.mode !== "polygon" || this.points.length < 3) return;
    this.shape = {type: "polygon", ring: [...this.points]};
    this.done();
  }

  done() {
    this.mode = null;
    this.points = [];
    this.hint.textContent = "";
    byId("draw-finish").hidden = true;
    this.app.deck.setProps({controller: true});
    this.draw();
    this.query();
  }

  clear() {
    this.mode = null;
    this.points = [];
    this.shape = null;
    this.selection = [];
    if (this.result) this.result.replaceChildren();
    this.draw();
  }

  ring() {
    if (this.shape?.type === "radius") return circleRing(this.shape.centre, this.shape.radius);
    if (this.shape?.type === "polygon") return this.shape.ring;
    return this.points.length >= 2 ? this.points : null;
  }

  draw() {
    const ring = this.ring();
    const layers = [];
    if (ring) {
      layers.push(new PolygonLayer({id: "planner-shape", data: [{ring}], getPolygon: (d) => d.ring, filled: true, stroked: true,
        getFillColor: [25, 118, 210, 40], getLineColor: [25, 118, 210, 255], lineWidthUnits: "pixels", getLineWidth: 2}));
    }
    layers.push(new ScatterplotLayer({id: "planner-vertices", data: this.points, getPosition: (d) => d, radiusUnits: "pixels",
      getRadius: 4, getFillColor: [25, 118, 210, 255]}));
    if (this.selection?.length) {
      layers.push(new GeoJsonLayer({id: "planner-selection", data: this.selection, pointType: "circle", pointRadiusUnits: "pixels",
        getPointRadius: 7, filled: false, stroked: true, getLineColor: [255, 214, 0, 255], lineWidthUnits: "pixels", getLineWidth: 3}));
    }
    this.app.extraLayers.planner = layers;
    this.app.redraw();
  }

  request(layer) {
    const base = `${config.urls.collections}/${encodeURIComponent(layer.id)}`;
    if (this.shape.type === "radius") {
      const [lon, lat] = this.shape.centre;
      return getJSON(`${base}/within`, {lon, lat, radius_m: Math.round(this.shape.radius), limit: LIMIT});
    }
    return getJSON(`${base}/polygon`, {geom: polygonWkt(this.shape.ring), limit: LIMIT});
  }

  async query() {
    const chosen = [...this.layerSelect.selectedOptions].map((o) => this.app.layer(o.value)).filter(Boolean);
    this.result.replaceChildren(el("p", {class: "muted"}, t("loading")));
    const answers = await Promise.allSettled(chosen.map((layer) => this.request(layer)));
    this.selection = [];
    const blocks = answers.map((answer, i) => this.block(chosen[i], answer));
    this.result.replaceChildren(el("h4", {}, t("count_in_selection")), ...blocks);
    this.draw();
  }

  block(layer, answer) {
    if (answer.status === "rejected") {
      return el("div", {class: "error", dataset: {layer: layer.id}}, `${layer.title}: ${answer.reason.message}`);
    }
    const body = answer.value;
    const features = body.features || [];
    this.selection.push(...features);
    const more = (body.links || []).some((l) => l.rel === "next");
    const exports = (body.links || []).filter((l) => l.rel === "alternate").map((l) => {
      const format = new URL(l.href, location.href).searchParams.get("f");
      return el("a", {href: l.href, download: "", class: `export export-${format}`}, FORMATS[format] || format);
    });
    return el("div", {class: "planner-layer", dataset: {layer: layer.id, count: features.length}},
      el("strong", {}, layer.title), `: ${formatNumber(features.length)}${more ? "+" : ""} ${t("features")}`,
      el("ul", {}, features.slice(0, 8).map((f) => el("li", {}, f.properties?.name || f.id))),
      exports.length ? el("div", {class: "exports"}, `${t("export")}: `, exports.flatMap((a) => [a, " "])) : null);
  }

  async choropleth(layerId) {
    delete this.app.extraLayers.choropleth;
    if (!layerId) {
      this.app.redraw();
      return;
    }
    const body = await getJSON(`${config.urls.collections}/${encodeURIComponent(layerId)}/per-ward`, {f: "geojson"});
    const values = (body.features || []).map((f) => f.properties.count_per_km2 ?? 0).sort((a, b) => a - b);
    const breaks = [0.2, 0.4, 0.6, 0.8].map((q) => values[Math.floor(q * (values.length - 1))] ?? 0);
    const colour = (v) => [...RAMP[breaks.filter((b) => v > b).length], 120];
    this.app.extraLayers.choropleth = [new GeoJsonLayer({id: "choropleth", data: body, filled: true, stroked: true,
      getFillColor: (f) => colour(f.properties.count_per_km2 ?? 0), getLineColor: [120, 60, 10, 200], lineWidthUnits: "pixels",
      getLineWidth: 1, pickable: false})];
    this.app.redraw();
  }
}

export function setupPlanner(app) {
  if (!byId("planner")) return null;
  const planner = new Planner(app);
  planner.render();
  app.onMapClick = (info) => planner.click(info);
  app.planner = planner;
  return planner;
}
