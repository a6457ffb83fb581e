// SPDX-License-Identifier: AGPL-3.0-or-later
// The 3D operations map: wires the base map, live layers, socket, console and tools together.
// `window.citytwin` exposes the state browser tests and the benchmark read (render count,
// events seen, view state); it is read-only information, nothing reads it back.
import { Deck, FlyToInterpolator, MapView, WebMercatorViewport } from "@deck.gl/core";
import { config } from "./config.js";
import { loadCatalog, loadLabels, loadPoints } from "./catalog.js";
import { EventStore, eventLayers, normalise } from "./events.js";
import { LiveSocket } from "./live.js";
import { AlertConsole } from "./alerts.js";
import { featureDetails } from "./details.js";
import { byId } from "./dom.js";
import { t } from "./i18n.js";
import { renderPanel } from "./panel.js";
import { setupSearch } from "./search.js";
import { DRAW_ORDER, deckLayers } from "./render.js";
import { loadLatest, loadTracks } from "./feeds.js";
import { setupPlanner } from "./planner.js";
import { setupTime } from "./timeline.js";
import { saveCurrentView, setupWall } from "./wall.js";
import { livePoints } from "./bench/points.js";

const PULSE_MS = 1600;
const PULSE_TICK_MS = 250;           // pulses animate at 4 frames/s at most (each is a full frame)
const FIRST_FRAME_WAIT_MS = 8000;    // the rest of the map follows the city's tiles, or this long
const FLY_MS = 1500;

export class MapApp {
  constructor() {
    this.layers = [];
    this.extraLayers = {};             // name -> [deck layers] added by tools (planner, …)
    this.moment = null;                // time-slider moment (ms) or null for live
    this.dirty = false;
    this.stage = "base";               // "base": tiles only, until the city's first tiles are drawn
    this.phase = null;                 // pulse phase (0–1) while a severe event is in view
    this.status = window.citytwin = {renders: 0, ready: false, events: {}, viewState: null, errors: [], app: this};
    this.store = new EventStore(() => this.eventsChanged());
    this.viewState = {...config.city.view, pitch: 50, bearing: -15, maxPitch: 70};
    this.status.viewState = this.viewState;
  }

  async start() {
    this.status.scriptAt = performance.now();   // for bench/map.py: where the time before the first frame goes
    this.font = this.loadFont();          // labels wait for it; tiles and points do not
    this.deck = new Deck({
      parent: byId("map"), views: new MapView({repeat: false}), initialViewState: this.viewState, controller: true,
      layers: [], useDevicePixels: 1, deviceProps: {webgl: {antialias: false}},
      onViewStateChange: ({viewState}) => this.viewChanged(viewState),
      onAfterRender: () => {
        this.status.renders++;
        const now = performance.now();
        if (this.stage === "base" && this.cityDrawn()) this.fullStage(now);
        if (this.status.frames) this.status.frames.push(now);
        if (this.status.idle == null && this.status.ready && this.deck.props.layers.every((l) => l.isLoaded !== false)) {
          this.status.idle = now;
        }
      },
      onError: (error, layer) => this.fail(`${layer?.id || "deck"}: ${error?.message || error}`),
      getCursor: ({isHovering}) => (isHovering ? "pointer" : "grab"),
    });
    this.listenForClicks();
    this.alerts = new AlertConsole(this.store, {onSelect: (e) => this.selectEvent(e), showDetails: (e) => this.showEvent(e)});
    byId("details-close")?.addEventListener("click", () => this.closeDetails());
    byId("lang-select")?.addEventListener("change", (e) => e.target.form.submit());
    byId("save-view")?.addEventListener("click", (e) => { e.target.dataset.saved = saveCurrentView(this); });
    this.showCatalog(await loadCatalog());
    setTimeout(() => this.fullStage(null), FIRST_FRAME_WAIT_MS);
    await this.afterFirstFrame;
    await this.loadLayers();
    if (config.user.read_events) await this.store.load().catch((e) => this.fail(e));
    this.alerts.render();
    this.startLive();
    setupSearch(() => this.layers, (hit) => this.pick(hit));
    setupPlanner(this);
    setupTime(this);
    if (config.mode === "wall") await setupWall(this);
    setInterval(() => this.pulse(), PULSE_TICK_MS);
    this.redraw();
    this.status.ready = true;
  }

  async loadFont() {
    // Two subsets of one family (fontsource splits Latin from the Vietnamese letters); the CSS
    // declares the same faces for the panels, this makes sure both are loaded before deck.gl
    // rasterises its label atlas.
    try {
      const [latin, vietnamese] = config.urls.fonts;
      const faces = [new FontFace("Be Vietnam Pro", `url(${latin})`, {unicodeRange: "U+0000-00FF, U+0131, U+0152-0153, U+02BB-02BC, U+02C6, U+02DA, U+02DC, U+2000-206F, U+20AC, U+2122, U+2191, U+2193, U+2212, U+2215, U+FEFF, U+FFFD"}),
        new FontFace("Be Vietnam Pro", `url(${vietnamese})`, {unicodeRange: "U+0102-0103, U+0110-0111, U+0128-0129, U+0168-0169, U+01A0-01A1, U+01AF-01B0, U+0300-0301, U+0303-0304, U+0308-0309, U+0323, U+0329, U+1EA0-1EF9, U+20AB"})];
      for (const face of faces) document.fonts.add(await face.load());
    } catch (e) {
      this.fail(e);                    // labels fall back to the system sans-serif
    }
  }

  fail(error) {
    console.error(error);
    this.status.errors.push(String(error?.message || error));
  }

  /** The layer list (rendered into the page): the tiles start loading and the city draws at once. */
  showCatalog(layers) {
    this.layers = layers.sort((a, b) => (DRAW_ORDER[a.kind] ?? 9) - (DRAW_ORDER[b.kind] ?? 9));
    renderPanel(this.layers, () => this.layerChanged());
    this.updateAttribution();
    this.afterFirstFrame = new Promise((resolve) => { this.firstFrameDone = resolve; });
    this.redraw();
  }

  /** Every visible tile layer has drawn its first tile (the same test as the bare bench page). */
  cityDrawn() {
    const tiled = this.layers.filter((l) => l.visible && l.mode === "tiles");
    return tiled.length > 0 && tiled.every((l) => l.tileArrived);
  }

  /**
   * After the city's first frame: labels, points, events and pulses join, so compiling their
   * shaders (seconds under software GL) and loading their data never delays the city itself.
   */
  fullStage(drawnAt) {
    if (this.stage !== "base") return;
    this.stage = "full";
    this.status.firstRender = drawnAt ?? performance.now();
    performance.mark("citytwin-first-render");
    this.firstFrameDone();
    this.redraw();
  }

  /** Points, labels, readings and tracks of every visible layer; hidden ones load when ticked. */
  async loadLayers() {
    await Promise.all(this.layers.filter((l) => l.visible).map((layer) => this.ensureLoaded(layer)));
  }

  ensureLoaded(layer) {
    layer.loading ??= this.loadLayer(layer)
      .then(() => this.redraw())
      .catch((e) => this.fail(e));
    return layer.loading;
  }

  async loadLayer(layer) {
    if (layer.kind === "admin_area") {
      await this.font;
      await loadLabels(layer);
    }
    if (layer.mode === "points") await loadPoints(layer);
    if (layer.mode !== "points") return;
    if (layer.kind === "sensor") await loadLatest(layer).catch(() => null);
    if (layer.kind === "boat") await loadTracks(layer).catch(() => null);
  }

  layer(id) {
    return this.layers.find((l) => l.id === id);
  }

  layerChanged() {
    if (this.stage === "full") this.layers.filter((l) => l.visible).forEach((l) => this.ensureLoaded(l));
    this.updateAttribution();
    this.resubscribe();
    this.redraw();
  }

  updateAttribution() {
    const target = byId("attribution-text");
    if (!target) return;
    const parts = new Set([config.city.attribution, ...this.layers.filter((l) => l.visible).map((l) => l.attribution)]
      .flatMap((a) => String(a || "").split(/\s*[;\n]\s*/)).map((a) => a.trim()).filter(Boolean));
    target.textContent = [...parts].join(" · ");
  }

  redraw() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.dirty = false;
    if (!this.deck) return;
    const zoom = this.viewState.zoom, base = this.stage === "base";
    const layers = this.layers.flatMap((layer) => deckLayers(layer, zoom, this.moment, base));
    if (!base) {
      layers.push(...Object.values(this.extraLayers).flat());
      layers.push(...eventLayers(this.store, this.phase));
    }
    this.deck.setProps({layers});
  }

  /** Advance the pulses, only while a severe event is on screen (else no frame is drawn for them). */
  pulse() {
    const box = this.bbox();
    const inView = (p) => !box || (p[0] >= box[0] && p[0] <= box[2] && p[1] >= box[1] && p[1] <= box[3]);
    const severe = this.stage === "full" && this.store.visible().some((e) => e.severity >= 3 && e.position && inView(e.position));
    if (!severe) {
      if (this.phase !== null) { this.phase = null; this.redraw(); }
      return;
    }
    this.phase = (performance.now() % PULSE_MS) / PULSE_MS;
    this.redraw();
  }

  viewChanged(viewState) {
    const zoomBand = (z) => this.layers.map((l) => (l.labelZooms ? Number(z >= l.labelZooms[0] && z < l.labelZooms[1]) : 0)).join();
    const redrawLabels = zoomBand(viewState.zoom) !== zoomBand(this.viewState.zoom);
    this.viewState = viewState;
    this.status.viewState = viewState;
    if (redrawLabels) this.redraw();
    clearTimeout(this.subscribeTimer);
    this.subscribeTimer = setTimeout(() => this.resubscribe(), 400);
  }

  bbox() {
    const {width, height} = this.deck?.getCanvas?.() || byId("map").getBoundingClientRect();
    try {
      const viewport = new WebMercatorViewport({...this.viewState, width: width || 1200, height: height || 800});
      const [[x0, y0], [x1, y1]] = viewport.getBounds ? [viewport.getBounds().slice(0, 2), viewport.getBounds().slice(2)] : [[-180, -85], [180, 85]];
      // Pitched views see past the horizon: widen a little, clamp to the world.
      const pad = Math.max(x1 - x0, y1 - y0) * 0.25;
      return [Math.max(-180, x0 - pad), Math.max(-85, y0 - pad), Math.min(180, x1 + pad), Math.min(85, y1 + pad)];
    } catch {
      return null;
    }
  }

  startLive() {
    const indicator = byId("live-status");
    const canLive = config.user.read_events || config.user.read_private;
    if (!canLive) {
      if (indicator) { indicator.dataset.state = "none"; indicator.title = t("live_none"); }
      return;
    }
    this.live = new LiveSocket({
      onEvent: (m) => this.liveEvent(m),
      onFeatures: (list) => this.liveFeatures(list),
      onResync: () => this.resync(),
      onState: (state) => {
        this.status.live = state;
        if (indicator) { indicator.dataset.state = state; indicator.title = t(state === "on" ? "live_on" : "live_off"); }
      },
    });
    this.resubscribe();
    this.live.connect();
  }

  resubscribe() {
    if (!this.live) return;
    const layers = this.layers.filter((l) => l.visible).map((l) => l.id).slice(0, 100);
    const bbox = this.bbox();
    this.live.subscribe({...(bbox ? {bbox} : {}), layers, events: !!config.user.read_events});
  }

  liveEvent(message) {
    const event = normalise(message.event);
    this.store.put(event);
    this.status.events[event.id] = {at: performance.now(), wall: Date.now(), status: event.status};
  }

  /**
   * Feature messages: status, position and (after a reading) the newest values, which colour the
   * sensor at once; no HTTP read follows. Dense layers drawn from tiles reload them instead.
   */
  liveFeatures(messages) {
    for (const m of messages) {
      const layer = this.layer(m.layer);
      if (!layer) continue;
      if (layer.mode === "points") {
        const id = String(m.id), old = layer.features.get(id);
        const feature = {type: "Feature", id, geometry: m.geometry || old?.geometry,
          properties: {...(old?.properties || {}), status: m.status, last_seen: m.last_seen}};
        layer.features.set(id, feature);
        if (m.values) layer.latest.set(id, {...layer.latest.get(id), ...m.values, time: m.observed_at});
        this.status.liveValues = (this.status.liveValues || 0) + (m.values ? 1 : 0);
      } else {
        this.refreshLater(layer);
      }
      layer.touch();
    }
    this.redraw();
  }

  /** Reload a dense layer's tiles, at most every 10 s. */
  refreshLater(layer) {
    if (layer.refreshTimer) return;
    layer.refreshTimer = setTimeout(() => {
      layer.refreshTimer = null;
      layer.tileVersion += 1;
      layer.touch();
      this.redraw();
    }, 10000);
  }

  async resync() {
    await Promise.all(this.layers.filter((l) => l.mode === "points").map((l) => loadPoints(l)
      .then(() => l.kind === "sensor" && loadLatest(l)).catch(() => null)));
    if (config.user.read_events) await this.store.load().catch((e) => this.fail(e));
    this.redraw();
  }

  eventsChanged() {
    this.alerts?.render();
    this.redraw();
    this.onEventsChanged?.();
  }

  flyTo(position, zoom = 17, {pitch = 55, bearing = this.viewState.bearing} = {}) {
    const target = {...this.viewState, longitude: position[0], latitude: position[1], zoom, pitch, bearing,
      transitionDuration: FLY_MS, transitionInterpolator: new FlyToInterpolator()};
    this.deck.setProps({initialViewState: target});
  }

  async selectEvent(event) {
    if (event.position) this.flyTo(event.position, 17);
    this.status.selected = event.id;
    this.showEvent(event);
    try {
      this.showEvent(await this.store.detail(event.id));
    } catch (e) {
      this.fail(e);
    }
  }

  showEvent(event) {
    this.openDetails(this.alerts.details(event), {event: event.id});
  }

  openDetails(children, dataset = {}) {
    const panel = byId("details");
    if (!panel) return;
    byId("details-body").replaceChildren(...children);
    panel.hidden = false;
    panel.dataset.event = dataset.event ?? "";
    panel.dataset.feature = dataset.feature ?? "";
  }

  closeDetails() {
    const panel = byId("details");
    if (panel) panel.hidden = true;
  }

  /**
   * Clicks on the map from the DOM's own click event, picked at once. deck.gl's gesture
   * recogniser drops a click whose button-up is handled late, which is every click while a
   * software-rendered frame is being drawn; a press that moved (a pan) is not a click.
   */
  listenForClicks() {
    const canvas = this.deck.getCanvas?.() || byId("map").querySelector("canvas");
    let down = null;
    canvas.addEventListener("pointerdown", (e) => { down = [e.clientX, e.clientY]; });
    canvas.addEventListener("click", (e) => {
      if (down && Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 5) return;
      const box = canvas.getBoundingClientRect();
      const [x, y] = [e.clientX - box.left, e.clientY - box.top];
      const picked = this.deck.pickObject({x, y, radius: 4});
      const viewport = this.deck.getViewports()[0];
      this.clicked({...(picked || {}), x, y, coordinate: picked?.coordinate || viewport?.unproject([x, y]),
        detail: e.detail});
    });
  }

  clicked(info) {
    this.status.clicks = [...(this.status.clicks || []).slice(-4), {x: info.x, y: info.y, layer: info.layer?.id ?? null}];
    if (this.onMapClick?.(info)) return;          // a planner tool took the click
    if (!info.object) return;
    if (info.layer?.id === "events") {
      this.selectEvent(info.object);
      return;
    }
    const layer = this.layer(info.layer?.id);
    const id = info.object.properties?.id ?? info.object.id;
    if (layer && id !== undefined) this.showFeature(layer, String(id));
  }

  async showFeature(layer, id) {
    try {
      this.openDetails(await featureDetails(layer, id), {feature: `${layer.id}/${id}`});
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * bench/map.py's hook: `n` synthetic live points over the city, 1 % moved every frame, drawn
   * through the console's own redraw path next to everything else on the map.
   */
  startBench(n) {
    const live = livePoints(n, config.city.bounds || [106, 16, 107, 17]);
    this.benchLive = live;
    this.status.frames = [];
    const loop = () => {
      if (this.benchLive !== live) return;
      live.step();
      this.extraLayers.bench = [live.layer()];
      this.redraw();
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  stopBench() {
    this.benchLive = null;
    delete this.extraLayers.bench;
    this.redraw();
  }

  pick(hit) {
    this.flyTo(hit.position, hit.zoom || 16);
    if (hit.layer && hit.id) this.showFeature(hit.layer, hit.id);
  }
}

const app = new MapApp();
app.start().catch((e) => app.fail(e));
