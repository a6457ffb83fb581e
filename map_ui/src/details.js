// SPDX-License-Identifier: AGPL-3.0-or-later
// Feature details on click: every property from OGC API Features, a chart of a device's recent
// readings from its `{layer}.observations` collection, a camera's latest snapshot and a
// report's photos and history when the layer provides them.
import { getJSON } from "./api.js";
import { config } from "./config.js";
import { el } from "./dom.js";
import { formatDate, formatNumber, formatTime, t } from "./i18n.js";

const OBSERVED_KINDS = new Set(["sensor", "camera", "boat"]);
const HIDDEN = new Set(["stream_url", "credentials", "password"]);
const SVG = "http://www.w3.org/2000/svg";

const local = (url) => typeof url === "string" && url.startsWith("/") && !url.startsWith("//");

/** The last `limit` readings of a feature, oldest first. */
export async function recentReadings(layerId, featureId, limit = 60) {
  const body = await getJSON(`${config.urls.collections}/${encodeURIComponent(`${layerId}.observations`)}/items`,
    {feature: featureId, sortby: "-time", limit});
  return (body.features || []).map((f) => f.properties).reverse();
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** A small line chart of one numeric series (no charting library: one polyline). */
export function chart(readings, key) {
  const points = readings.filter((r) => typeof r[key] === "number" || typeof r[key] === "boolean")
    .map((r) => [Date.parse(r.time), Number(r[key])]);
  if (points.length < 1) return null;
  const [w, h, pad] = [280, 90, 4];
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (w - 2 * pad);
  const sy = (y) => h - pad - ((y - y0) / (y1 - y0 || 1)) * (h - 2 * pad);
  const root = svg("svg", {viewBox: `0 0 ${w} ${h}`, class: "chart", role: "img", "aria-label": key});
  root.append(svg("polyline", {points: points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "),
    fill: "none", stroke: "#1565c0", "stroke-width": 2}));
  const last = points[points.length - 1];
  return el("figure", {class: "reading-chart", dataset: {key, points: points.length}}, root,
    el("figcaption", {}, `${key}: ${formatNumber(last[1])} (${formatTime(last[0])}) · min ${formatNumber(y0)} · max ${formatNumber(y1)}`));
}

function readingsBlock(readings) {
  if (!readings.length) return el("p", {class: "muted"}, t("no_readings"));
  const keys = Object.keys(readings[readings.length - 1]).filter((k) => !["feature", "time"].includes(k));
  return el("div", {class: "readings"}, keys.map((k) => chart(readings, k)).filter(Boolean));
}

function propertyTable(properties) {
  const rows = Object.entries(properties || {}).filter(([k, v]) => !HIDDEN.has(k) && v !== null && typeof v !== "object");
  return el("dl", {}, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, k.endsWith("_at") || k === "last_seen" ? formatDate(v) : formatNumber(v))]));
}

function media(p) {
  const found = [];
  if (local(p.snapshot_url)) found.push(el("h4", {}, t("snapshot")), el("img", {src: p.snapshot_url, alt: t("snapshot"), class: "snapshot"}));
  const photos = (Array.isArray(p.photos) ? p.photos : []).map((x) => (typeof x === "string" ? x : x?.url)).filter(local);
  if (photos.length) found.push(el("h4", {}, t("photos")), el("div", {class: "photos"}, photos.map((src) => el("img", {src, alt: ""}))));
  if (Array.isArray(p.history) && p.history.length) {
    found.push(el("h4", {}, t("history")), el("ol", {class: "history"}, p.history.map((h) =>
      el("li", {}, typeof h === "object" ? `${formatDate(h.at || h.time)} · ${h.status || h.to || ""} ${h.note || ""}` : String(h)))));
  }
  return found;
}

/** The details body of feature `featureId` of `layer`. */
export async function featureDetails(layer, featureId) {
  const url = `${config.urls.collections}/${encodeURIComponent(layer.id)}/items/${encodeURIComponent(featureId)}`;
  const feature = await getJSON(url);
  const p = feature.properties || {};
  const status = p.status === "offline" ? t("feature_offline") : p.status;
  const body = [el("h3", {}, p.name || featureId), el("p", {class: "muted"}, `${layer.title} · ${featureId}`, status ? ` · ${status}` : ""),
    propertyTable(p), ...media(p)];
  if (OBSERVED_KINDS.has(layer.kind)) {
    body.push(el("h4", {}, t("readings")));
    try {
      body.push(readingsBlock(await recentReadings(layer.id, featureId)));
    } catch (error) {
      body.push(el("p", {class: "error"}, `${t("error")}: ${error.message}`));
    }
  }
  body.push(el("p", {}, el("a", {href: `${url}?f=html`, target: "_blank"}, t("open_data"))));
  return body;
}
