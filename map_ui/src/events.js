// SPDX-License-Identifier: AGPL-3.0-or-later
// The open geo-events: loaded from /api/events, kept current by /ws/live, drawn as dots that
// pulse by severity, listed newest and most severe first.
import { ScatterplotLayer } from "@deck.gl/layers";
import { getJSON, postJSON } from "./api.js";
import { config } from "./config.js";
import { severityColour } from "./styles.js";

export const OPEN = new Set(["new", "acknowledged", "dispatched"]);

/** One event as the page holds it, from either the HTTP API (a GeoJSON Feature) or the socket. */
export function normalise(source) {
  const p = source.properties || source;
  const geometry = source.geometry || null;
  return {
    id: source.id, kind: p.kind, category: p.category, severity: p.severity ?? 3, status: p.status,
    title: p.title || p.category || `#${source.id}`, occurred_at: p.occurred_at, updated_at: p.updated_at,
    ward: p.ward || null, agency: p.agency || null, layer: p.layer || null, source_feature: p.source_feature ?? null,
    geometry, position: geometry ? anchor(geometry) : null, history: p.history || null, payload: p.payload || null,
  };
}

/** A point to fly to and pulse at: the point itself or the first vertex of a shape. */
function anchor(geometry) {
  let c = geometry.coordinates;
  while (Array.isArray(c) && Array.isArray(c[0])) c = c[0];
  return Array.isArray(c) && c.length >= 2 ? [c[0], c[1]] : null;
}

/** Newest first; among events of the same minute, the most severe first. */
export function alertOrder(a, b) {
  const ta = Date.parse(a.occurred_at) || 0, tb = Date.parse(b.occurred_at) || 0;
  const ma = Math.floor(ta / 60000), mb = Math.floor(tb / 60000);
  if (ma !== mb) return mb - ma;
  if (a.severity !== b.severity) return b.severity - a.severity;
  return tb - ta || b.id - a.id;
}

export class EventStore {
  constructor(onChange) {
    this.events = new Map();
    this.onChange = onChange;
    this.version = 0;
    this.cutoff = null;                 // time-slider moment (ms) or null for "now"
    this.seen = new Map();              // id -> latest updated_at (ms) applied
    this.history = [];                  // the events as they stood at `cutoff` (status then), for the replay
  }

  async load() {
    const body = await getJSON(config.urls.events, {status: [...OPEN].join(","), limit: 500});
    for (const f of body.features || []) this.put(normalise(f), false);
    this.changed();
  }

  /**
   * The events as they stood at `moment` (ms): those active in the 24 h before it that had
   * occurred by then, each with the status it had at that moment (`as_of`), not today's.
   */
  async loadAsOf(moment) {
    const iso = (ms) => new Date(ms).toISOString();
    const body = await getJSON(config.urls.events, {as_of: iso(moment), since: iso(moment - 24 * 3600 * 1000), limit: 1000});
    return (body.features || []).map((f) => {
      const event = normalise(f);
      return {...event, status: f.properties?.status_as_of ?? event.status, statusNow: event.status};
    });
  }

  put(event, notify = true) {
    // Messages can arrive out of order (an HTTP answer, then the socket's older announcement of the
    // step before): a version older than the one held is ignored, closed events included.
    const at = Date.parse(event.updated_at) || 0, held = this.seen.get(event.id) || 0;
    if (at && at < held) return;
    if (at) this.seen.set(event.id, at);
    if (OPEN.has(event.status)) {
      this.events.set(event.id, {...this.events.get(event.id), ...event, seenAt: performance.now()});
    } else {
      this.events.delete(event.id);
    }
    if (notify) this.changed();
  }

  changed() {
    this.version += 1;
    this.onChange?.();
  }

  /** What is shown: the open events, or at a past moment the events as they stood then. */
  visible() {
    if (this.cutoff === null) return [...this.events.values()].sort(alertOrder);
    return [...this.history].sort(alertOrder);
  }

  async transition(id, status, note = "") {
    const answer = await postJSON(`${config.urls.events}/${id}/transition`, {status, note});
    if (answer && answer.id !== undefined) this.put(normalise(answer));
    return answer;
  }

  async detail(id) {
    return normalise(await getJSON(`${config.urls.events}/${id}`));
  }
}

/**
 * Dots, and pulsing rings around severe events while `phase` (0–1) is not null (the app animates
 * it only while such an event is in view). The same layer instances until the events change, so a
 * redraw for something else re-uses them.
 */
export function eventLayers(store, phase) {
  if (store.drawn?.version !== store.version || store.drawn?.cutoff !== store.cutoff) {
    const data = store.visible().filter((e) => e.position);
    store.drawn = {version: store.version, cutoff: store.cutoff, data, severe: data.filter((e) => e.severity >= 3),
      dots: new ScatterplotLayer({
        id: "events", data, getPosition: (e) => e.position, radiusUnits: "pixels", getRadius: (e) => 5 + e.severity,
        getFillColor: (e) => severityColour(e.severity), stroked: true, getLineColor: [255, 255, 255, 255],
        lineWidthUnits: "pixels", getLineWidth: 2, pickable: true, updateTriggers: {getFillColor: [store.version]},
      })};
  }
  const {severe, dots} = store.drawn;
  if (phase === null || !severe.length) return [dots];
  return [
    new ScatterplotLayer({
      id: "events-pulse", data: severe, getPosition: (e) => e.position,
      radiusUnits: "pixels", getRadius: (e) => 10 + e.severity * 4 * phase, stroked: true, filled: false,
      getLineColor: (e) => severityColour(e.severity, Math.round(255 * (1 - phase))), lineWidthUnits: "pixels",
      getLineWidth: 3, updateTriggers: {getRadius: [phase], getLineColor: [phase]}, pickable: false,
    }),
    dots,
  ];
}
