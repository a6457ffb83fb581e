// SPDX-License-Identifier: AGPL-3.0-or-later
// Time series that colour and move live features: each sensor's latest reading and each boat's
// recent track, read from the layer's `{slug}.observations` collection.
import { getJSON } from "./api.js";
import { config } from "./config.js";

const HOUR = 3600 * 1000;

function observations(layer, params) {
  return getJSON(`${config.urls.collections}/${encodeURIComponent(`${layer.id}.observations`)}/items`, params);
}

const since = (ms) => `${new Date(Date.now() - ms).toISOString()}/..`;

/** The latest values of each sensor of `layer` over the last two hours. */
export async function loadLatest(layer) {
  const body = await observations(layer, {datetime: since(2 * HOUR), sortby: "-time", limit: 5000});
  const latest = new Map();
  for (const f of body.features || []) {
    const id = String(f.properties.feature);
    if (!latest.has(id)) latest.set(id, f.properties);
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
