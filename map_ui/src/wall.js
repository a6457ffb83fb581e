// SPDX-License-Identifier: AGPL-3.0-or-later
// Video-wall mode: the map, KPI tiles and an alert ticker, no controls, cycling between saved
// views. Views come from the URL (`?view=lon,lat,zoom[,pitch[,bearing]]`, repeatable, so each
// screen of a wall gets its own), else from the city's views saved on the server
// (`/map/wall/views`: centre, zoom, pitch, bearing, layers on, dwell), else from views saved in
// this browser's console, else the city and its most severe open events. `?cycle=SECONDS` sets
// the dwell time of every view (default: the server view's own, else 20).
import { getJSON } from "./api.js";
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

/** The city's views saved on the server, or [] (no right to read them, none saved, or it failed). */
async function serverViews(app) {
  if (!config.user.read_events || !config.urls.wallViews) return [];
  try {
    const body = await getJSON(config.urls.wallViews, config.city.slug ? {city: config.city.slug} : {});
    return (body.views || []).map((v) => ({...v, name: localName(v.name_vi, v.name_en)}));
  } catch (e) {
    app.fail(e);
    return [];
  }
}

/** Switch on exactly the view's layers (an empty list keeps the page's own). */
function showLayers(app, slugs) {
  if (!slugs?.length) return;
  const on = new Set(slugs);
  let changed = false;
  for (const layer of app.layers) {
    if (layer.visible !== on.has(layer.id)) {
      layer.visible = on.has(layer.id);
      layer.touch();       // new deck.gl layers when shown again: deck finalised the old ones
      changed = true;
    }
  }
  if (changed) app.layerChanged();
}

export async function setupWall(app) {
  app.deck.setProps({controller: false});
  const forced = Number(new URLSearchParams(location.search).get("cycle")) || null;
  const fromServer = viewsFromQuery(location.search).length ? [] : await serverViews(app);
  app.status.wallViews = fromServer.map((v) => v.name);
  const views = () => {
    const fixed = viewsFromQuery(location.search);
    if (fixed.length) return fixed;
    if (fromServer.length) return fromServer;
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
    app.status.wallViewName = view.name ?? null;
    showLayers(app, view.layers);
    app.status.wallShown = [...(app.status.wallShown || []).slice(-20), {name: view.name ?? null, at: performance.now(),
      longitude: view.longitude, latitude: view.latitude, layers: app.layers.filter((l) => l.visible).map((l) => l.id)}];
    app.flyTo([view.longitude, view.latitude], view.zoom, {pitch: view.pitch, bearing: view.bearing});
    setTimeout(cycle, (forced || view.dwell_s || 20) * 1000);
  };
  app.onEventsChanged = () => {
    renderKpis(app);
    renderTicker(app);
  };
  app.onEventsChanged();
  setInterval(() => renderKpis(app), 5000);
  cycle();
}

/** The console's "save this view for the wall" action. */
export function saveCurrentView(app) {
  const {longitude, latitude, zoom, pitch, bearing} = app.viewState;
  const views = [...savedViews(), {longitude, latitude, zoom, pitch, bearing}].slice(-12);
  localStorage.setItem(SAVED_VIEWS_KEY, JSON.stringify(views));
  return views.length;
}
