// SPDX-License-Identifier: AGPL-3.0-or-later
// Colours and sizes per feature kind. The base colour of every layer is its default style from
// the layer registry (layers/registry.py, served as x-citytwin.style in /collections), so a new
// layer or kind gets drawn without changes here; the rules below only refine known kinds.

export const GREY = [150, 150, 150, 200];
export const BACKGROUND = [235, 232, 225];

/** "#rrggbb", "#rrggbbaa" or "#rgb" to [r, g, b, a]; anything else gives `fallback`. */
export function hexColour(hex, alpha = 255, fallback = [117, 117, 117, alpha]) {
  if (typeof hex !== "string" || !hex.startsWith("#")) return fallback;
  let h = hex.slice(1);
  if (h.length === 3) h = [...h].map((c) => c + c).join("");
  if (!/^[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$/.test(h)) return fallback;
  const [r, g, b] = [0, 2, 4].map((i) => Number.parseInt(h.slice(i, i + 2), 16));
  return [r, g, b, h.length === 8 ? Number.parseInt(h.slice(6), 16) : alpha];
}

/** The fill of a registry style (`fill`, else `color`), `fill_opacity` or the hex alpha winning over `alpha`. */
export function styleFill(style, alpha = 255) {
  const colour = hexColour(style?.fill || style?.color, alpha);
  if (typeof style?.fill_opacity === "number") colour[3] = Math.round(style.fill_opacity * 255);
  return colour;
}

export function styleStroke(style, alpha = 255) {
  return hexColour(style?.stroke || style?.color || style?.fill, alpha);
}

// VN_AQI colour bands (Quyết định 1459/QĐ-TCMT) over 24 h PM2.5 in µg/m³: a reading's band.
const PM25_BANDS = [[25, [0, 228, 0]], [50, [255, 255, 0]], [80, [255, 126, 0]], [150, [255, 0, 0]],
  [250, [143, 63, 151]], [Infinity, [126, 0, 35]]];

export function pm25Colour(value) {
  const band = PM25_BANDS.find(([limit]) => value <= limit);
  return [...band[1], 230];
}

/** A sensor's colour from its latest reading; `null` when the reading says nothing known. */
export function readingColour(sensorType, values, thresholds) {
  if (!values) return null;
  if (typeof values.pm25 === "number") return pm25Colour(values.pm25);
  if (typeof values.alarm === "boolean") return values.alarm ? [220, 0, 0, 255] : [46, 125, 50, 230];
  if (typeof values.currentLevel === "number") {
    const t = thresholds || {bd1: 1.0, bd2: 2.0, bd3: 3.5};
    const v = values.currentLevel;
    if (v >= t.bd3) return [200, 0, 0, 255];
    if (v >= t.bd2) return [255, 126, 0, 240];
    if (v >= t.bd1) return [240, 200, 0, 240];
    return [2, 136, 209, 230];
  }
  return null;
}

const REPORT_STATUS = {new: [239, 108, 0], received: [239, 108, 0], in_progress: [25, 118, 210],
  processing: [25, 118, 210], resolved: [46, 125, 50], closed: [120, 144, 156], rejected: [120, 144, 156]};

export function reportColour(status) {
  return [...(REPORT_STATUS[status] || [239, 108, 0]), 235];
}

// Severity 1–5: calm blue to alarm red; the pulse grows with severity.
const SEVERITY = {1: [25, 118, 210], 2: [0, 150, 136], 3: [251, 192, 45], 4: [245, 124, 0], 5: [211, 47, 47]};

export function severityColour(severity, alpha = 255) {
  return [...(SEVERITY[severity] || SEVERITY[3]), alpha];
}

// Roads by OSM class: width in metres (min pixels keep minor roads visible) and colour.
const ROAD_CLASSES = {
  motorway: [14, [230, 120, 60]], trunk: [12, [235, 150, 80]], primary: [10, [245, 180, 90]],
  secondary: [8, [250, 210, 120]], tertiary: [7, [255, 255, 255]], residential: [5, [255, 255, 255]],
  unclassified: [5, [255, 255, 255]], service: [3, [250, 250, 250]], footway: [2, [210, 200, 190]],
  path: [2, [210, 200, 190]], track: [2, [200, 180, 150]],
};

export function roadStyle(highway) {
  return ROAD_CLASSES[highway] || [3, [245, 245, 245]];
}
