// SPDX-License-Identifier: AGPL-3.0-or-later
// Time series that colour and move live features: each sensor's latest reading (now, or as of the
// time slider's moment) from `/collections/{slug}/latest`, and each boat's recent track from the
// layer's `{slug}.observations` collection.
import { getJSON } from "./api.js";
import { config } from "./config.js";

const HOUR = 3600 * 1000;

function observations(layer, params) {
  return getJSON(`${config.urls.collections}/${encodeURIComponent(`${layer.id}.observations`)}/items`, params);
}

const since = (ms) => `${new Date(Date.now() - ms).toISOString()}/..`;

/**
 * Each feature's latest values (`/collections/{id}/latest`: one row per feature, not every
 * reading of a window) as of `moment` (ms), or now; `offline` holds the features that were offline
 * then (an offline event of theirs was open).
 */
export async function readingsAt(layer, moment = null) {
  const params = moment === null ? {} : {datetime: new Date(moment).toISOString()};
  const body = await getJSON(`${config.urls.collections}/${encodeURIComponent(layer.id)}/latest`, params);
  const latest = new Map(), offline = new Set();
  for (const r of body.readings || []) {
    if (r.values) latest.set(String(r.feature), {...r.values, time: r.time});
    if (r.offline) offline.add(String(r.feature));
  }
  return {latest, offline};
}

/** The latest values of each sensor of `layer` now (live messages keep them current after this). */
export async function loadLatest(layer) {
  const {latest} = await readingsAt(layer);
  for (const [id, values] of layer.latest) {          // a live message newer than this answer wins
    if (values.time && (!latest.has(id) || latest.get(id).time < values.time)) latest.set(id, values);
  }
  layer.latest = latest;
  layer.touch();
}

/** Each boat's positions over the last 24 hours (for its track and the time slider). */
export async function loadTracks(layer) {
  const body = await observations(layer, {datetime: since(24 * HOUR), sortby: "time", limit: 10000});
  const tracks = new Map();
  for (const f of body.features || []) {
    if (f.geometry?.type !== "Point") continue;
    const id = String(f.properties.feature);
    if (!tracks.has(id)) tracks.set(id, []);
    tracks.get(id).push([...f.geometry.coordinates.slice(0, 2), Date.parse(f.properties.time)]);
  }
  layer.tracks = tracks;
  layer.touch();
}

/** Position of a boat at `moment` (ms) from its track: the last fix at or before it. */
export function positionAt(track, moment) {
  let found = null;
  for (const fix of track) {
    if (fix[2] > moment) break;
    found = fix;
  }
  return found;
}
