// SPDX-License-Identifier: AGPL-3.0-or-later
// The map's layers, driven by the server's layer list (/collections): each collection the user
// may read becomes one entry, drawn by its kind's default style. New layers (cameras, citizen
// reports, boats…) appear without map code changes.
import { getJSON } from "./api.js";
import { config } from "./config.js";
import { localName } from "./i18n.js";

const POINT_TYPES = new Set(["Point", "MultiPoint"]);
// Kinds that are the city's fabric: drawn from vector tiles whatever their size.
const TILE_KINDS = new Set(["building", "road", "water", "admin_area"]);
// Above this many features a point layer is drawn from (clustered) vector tiles instead of
// being held in the page; live updates then reload its tiles.
export const POINT_LIMIT = 5000;

/** One layer as the map holds it. */
export class MapLayer {
  constructor(doc) {
    const meta = doc["x-citytwin"] || {};
    this.id = doc.id;
    this.kind = meta.kind || "generic";
    this.title = localName(meta.title_vi || doc.title, meta.title_en);
    this.geometryType = meta.geometryType || "Geometry";
    this.style = meta.style || {};
    this.attribution = doc.attribution || "";
    this.hasTiles = (doc.links || []).some((l) => l.rel && l.rel.endsWith("tilesets-vector"));
    this.count = meta.features ?? null;   // feature count from /collections (x-citytwin.features)
    // Fabric kinds and big point layers are tiles; the count decides without fetching items.
    this.mode = TILE_KINDS.has(this.kind) || !POINT_TYPES.has(this.geometryType) ||
      (this.count !== null && this.count > POINT_LIMIT) ? "tiles" : "points";
    this.labelZooms = labelZooms(doc.extent?.spatial?.bbox?.[0]);
    this.visible = this.id !== "vn-provinces" || !config.city.slug;
    this.filter = null;            // {key, value} or null
    this.features = new Map();     // external id -> GeoJSON feature (points mode)
    this.latest = new Map();       // external id -> latest observed values (sensors)
    this.tracks = new Map();       // external id -> [[lon, lat], ...] (boats)
    this.version = 0;              // bumped on every change, for deck's updateTriggers
    this.tileVersion = 0;          // bumped to refetch tiles
    this.labels = null;            // [{position, text, level}] for admin areas
  }

  get tileUrl() {
    return `${config.urls.tiles}/${encodeURIComponent(this.id)}/{z}/{x}/{y}.mvt?v=${this.tileVersion}`;
  }

  matches(properties) {
    if (!this.filter) return true;
    const value = properties?.[this.filter.key];
    return value !== undefined && value !== null && String(value).toLowerCase() === this.filter.value.toLowerCase();
  }

  touch() {
    this.version += 1;
  }
}

/**
 * The zoom band [from, to) where an area layer's names are readable: from the zoom at which its
 * whole extent fills about a screen (a country's provinces from ~6, a city's wards from ~10).
 */
export function labelZooms(bbox) {
  const width = bbox ? Math.max(1e-3, Math.abs(bbox[2] - bbox[0]), Math.abs(bbox[3] - bbox[1])) : 1;
  const from = Math.max(0, Math.floor(Math.log2(360 / width)) + 1);
  return [from, from + 9];
}

/**
 * Every readable feature layer (observation series and the event stream are not drawn as layers),
 * from the list the page was rendered with (no round trip before the first frame).
 */
export async function loadCatalog() {
  const body = config.collections ? {collections: config.collections} : await getJSON(config.urls.collections);
  return (body.collections || [])
    .filter((doc) => !doc.id.includes(".") && doc["x-citytwin"]?.kind !== "events" && doc.id !== "geo-events")
    .map((doc) => new MapLayer(doc));
}

/** Load the features of a points-mode layer; too many switches it to tiles. */
export async function loadPoints(layer) {
  const body = await getJSON(`${config.urls.collections}/${encodeURIComponent(layer.id)}/items`, {limit: POINT_LIMIT});
  if ((body.links || []).some((l) => l.rel === "next")) {
    layer.mode = "tiles";
    return;
  }
  layer.features = new Map((body.features || []).map((f) => [String(f.id), f]));
  layer.touch();
}

/** A label point of a (Multi)Polygon: the centre of its largest outer ring. */
export function labelPoint(geometry) {
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] :
    geometry.type === "MultiPolygon" ? geometry.coordinates : [];
  let best = null;
  for (const polygon of polygons) {
    if (!best || polygon[0].length > best.length) best = polygon[0];
  }
  if (!best) return null;
  let x = 0, y = 0;
  for (const [lon, lat] of best) {
    x += lon;
    y += lat;
  }
  return [x / best.length, y / best.length];
}

/**
 * Names of an admin-area layer's areas, for the map labels and the ward search: one point inside
 * each area from /collections/{id}/labels (a few KB, instead of every outline from /items).
 */
export async function loadLabels(layer) {
  const body = await getJSON(`${config.urls.collections}/${encodeURIComponent(layer.id)}/labels`);
  layer.labels = (body.features || []).map((f) => ({
    id: String(f.id), position: f.geometry?.coordinates || null,
    text: localName(f.properties?.name, f.properties?.name_en), code: String(f.id),
  })).filter((l) => l.position && l.text);
  layer.touch();
}
