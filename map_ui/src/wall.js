// SPDX-License-Identifier: AGPL-3.0-or-later
// Video-wall mode: the map, KPI tiles and an alert ticker, no controls, cycling between saved
// views. Views come from the URL (`?view=lon,lat,zoom[,pitch[,bearing]]`, repeatable, so each
// screen of a wall gets its own), else from views saved in the console, else the city and its
// most severe open events. `?cycle=SECONDS` sets the dwell time (default 20).
import { config } from "./config.js";
import { byId, el } from "./dom.js";
import { formatNumber, formatTime, localName, t } from "./i18n.js";
import { severityColour } from "./styles.js";

export const SAVED_VIEWS_KEY = "citytwin.views";
const DEVICE_KINDS = new Set(["sensor", "camera", "boat"]);

/** Views from `?view=` parameters; bad ones are skipped, never guessed. */
export function viewsFromQuery(search) {
  return new URLSearchParams(search).getAll("view").map((v) => v.split(",").map(Number))
    .filter((n) => n.length >= 3 && n.every(Number.isFinite))
    .map(([longitude, latitude, zoom, pitch = 50, bearing = 0]) => ({longitude, latitude, zoom, pitch, bearing}));
}

function savedViews() {
  try {
    return JSON.parse(localStorage.getItem(SAVED_VIEWS_KEY) || "[]");
  } catch {
    return [];
  }
}

function kpis(app) {
  const open = [...app.store.events.values()];
  let online = 0, offline = 0;
  for (const layer of app.layers) {
    if (!DEVICE_KINDS.has(layer.kind)) continue;
    for (const f of layer.features.values()) {
      if (f.properties?.status === "offline") offline++;
      else online++;
    }
  }
  return [["kpi_open", open.length], ["kpi_critical", open.filter((e) => e.severity >= 4).length],
    ["kpi_devices", online], ["kpi_offline", offline]];
}

function renderKpis(app) {
  byId("kpis").replaceChildren(...kpis(app).map(([key, value]) =>
    el("div", {class: "kpi", dataset: {kpi: key}}, el("b", {}, formatNumber(value)), el("span", {}, t(key)))));
}

function renderTicker(app) {
  const events = app.store.visible().slice(0, 30);
  const items = events.length ? events.map((e) => el("span", {class: "item", dataset: {eventId: e.id}},
    el("span", {class: "sev", style: `background:rgb(${severityColour(e.severity).slice(0, 3).join(",")})`}),
    `${formatTime(e.occurred_at)} · ${e.title}${e.ward ? ` · ${localName(e.ward.name_vi, e.ward.name_en)}` : ""}`))
    : [el("span", {class: "item"}, t("no_alerts"))];
  byId("ticker").replaceChildren(el("div", {class: "track"}, items));
}

export function setupWall(app) {
  app.deck.setProps({controller: false});
  const dwell = (Number(new URLSearchParams(location.search).get("cycle")) || 20) * 1000;
  const views = () => {
    const fixed = viewsFromQuery(location.search);
    if (fixed.length) return fixed;
    const saved = savedViews();
    if (saved.length) return saved;
    const severe = app.store.visible().filter((e) => e.position).sort((a, b) => b.severity - a.severity).slice(0, 3);
    return [{...config.city.view, pitch: 50, bearing: -15},
      ...severe.map((e) => ({longitude: e.position[0], latitude: e.position[1], zoom: 16.5, pitch: 55, bearing: 0}))];
  };
  let index = 0;
  const cycle = () => {
    const list = views();
    const view = list[index % list.length];
    index += 1;
    app.status.wallView = index;
    app.flyTo([view.longitude, view.latitude], view.zoom);
  };
  app.onEventsChanged = () => {
    renderKpis(app);
    renderTicker(app);
  };
  app.onEventsChanged();
  setInterval(() => renderKpis(app), 5000);
  cycle();
  setInterval(cycle, dwell);
}

/** The console's "save this view for the wall" action. */
export function saveCurrentView(app) {
  const {longitude, latitude, zoom, pitch, bearing} = app.viewState;
  const views = [...savedViews(), {longitude, latitude, zoom, pitch, bearing}].slice(-12);
  localStorage.setItem(SAVED_VIEWS_KEY, JSON.stringify(views));
  return views.length;
}
