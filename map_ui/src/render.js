// SPDX-License-Identifier: AGPL-3.0-or-later
// deck.gl layers for each map layer, by kind. Tiles are read with loaders.gl's workers off:
// by default they would be fetched from a CDN (see ../shared/docs/map-offline.md).
import { MVTLayer } from "@deck.gl/geo-layers";
import { MVTLoader } from "@loaders.gl/mvt";
import { GeoJsonLayer, PathLayer, ScatterplotLayer, SolidPolygonLayer, TextLayer } from "@deck.gl/layers";
import { positionAt } from "./feeds.js";
import { simplifiedTile } from "./simplify.js";
import { GREY, readingColour, reportColour, roadStyle, styleFill, styleStroke } from "./styles.js";

// The main-thread MVTLoader: MVTLayer's default is the worker-only loader.
const LOAD_OPTIONS = {worker: false};
export const FONT = "Be Vietnam Pro, sans-serif";

const isOffline = (p) => p?.status === "offline" || p?.status === "inactive";

/**
 * The same array for as long as its inputs are the same: deck.gl recomputes every attribute of a
 * layer whose `data` is a new object, so rebuilding arrays on each redraw would redo the whole
 * layer every frame (and live updates redraw often).
 */
export function memo(owner, key, deps, compute) {
  owner.memo ??= {};
  const hit = owner.memo[key];
  if (hit && hit.deps.length === deps.length && hit.deps.every((d, i) => d === deps[i])) return hit.value;
  const value = compute();
  owner.memo[key] = {deps, value};
  return value;
}

const TILE_MAX_ZOOM = 18;
const kept = new WeakMap();

/**
 * Tile features kept by the layer's property filter (deck reads GeoJSON when binary is off): the
 * same array for the same tile and filter, or every redraw with a filter set would rebuild every
 * tile's attributes.
 */
function filtered(layer, data) {
  if (!layer.filter || !Array.isArray(data)) return data;
  const key = `${layer.filter.key}=${layer.filter.value}`;
  const hit = kept.get(data);
  if (hit?.key === key) return hit.value;
  const value = data.filter((f) => layer.matches(f.properties));
  kept.set(data, {key, value});
  return value;
}

function tileLayer(layer, extra) {
  return new MVTLayer({
    id: layer.id, data: layer.tileUrl, loaders: [MVTLoader], loadOptions: LOAD_OPTIONS, binary: false, pickable: true,
    minZoom: 0, maxZoom: TILE_MAX_ZOOM, visible: layer.visible, uniqueIdProperty: "id",
    onTileLoad: () => { layer.tileArrived ??= performance.now(); }, onTileError: () => { layer.tileArrived ??= performance.now(); },
    renderSubLayers: (props) => new GeoJsonLayer({...props, data: filtered(layer, simplifiedTile(props.data, props.tile, TILE_MAX_ZOOM))}),
    updateTriggers: {renderSubLayers: [layer.version]},
    ...extra,
  });
}

function buildingLayer(layer) {
  const fill = styleFill(layer.style);
  return tileLayer(layer, {
    extruded: true, wireframe: false, filled: true, stroked: false,
    getElevation: (f) => f.properties.height_m ?? (f.properties.levels ? f.properties.levels * 3.2 : 6),
    getFillColor: (f) => (isOffline(f.properties) ? GREY : fill),
    material: {ambient: 0.45, diffuse: 0.6, shininess: 16},
  });
}

function roadLayer(layer) {
  return tileLayer(layer, {
    filled: false, stroked: true, lineWidthUnits: "meters", lineWidthMinPixels: 1, lineCapRounded: true,
    getLineWidth: (f) => roadStyle(f.properties.highway)[0],
    getLineColor: (f) => [...roadStyle(f.properties.highway)[1], 255],
    updateTriggers: {renderSubLayers: [layer.version]},
  });
}

function waterLayer(layer) {
  const fill = styleFill(layer.style, 200);
  return tileLayer(layer, {
    filled: true, stroked: true, getFillColor: fill, getLineColor: styleStroke(layer.style),
    lineWidthUnits: "meters", getLineWidth: (f) => (f.properties.waterway === "river" ? 30 : 6),
    lineWidthMinPixels: 1,
  });
}

function areaLayer(layer) {
  return tileLayer(layer, {
    filled: true, stroked: true, getFillColor: styleFill(layer.style, 20), getLineColor: styleStroke(layer.style, 200),
    lineWidthUnits: "pixels", getLineWidth: (f) => (f.properties.level <= 1 ? 2.5 : 1.5),
    pickable: false,
  });
}

function polygonSiteLayer(layer) {
  const fill = styleFill(layer.style, 110);
  return tileLayer(layer, {
    filled: true, stroked: true, extruded: false, getFillColor: fill, getLineColor: styleStroke(layer.style),
    lineWidthUnits: "pixels", getLineWidth: 2, pointType: "circle", getPointRadius: 6,
    pointRadiusUnits: "pixels",
  });
}

/**
 * The colour of one point: offline grey, then kind rules, then the layer's default. In a replay
 * (`layer.replay`, set by timeline.js) readings and offline come from that moment, not today.
 */
function pointColour(layer, feature, fallback) {
  const p = feature.properties || {}, past = layer.replay;
  if (past ? past.offline.has(String(feature.id)) : isOffline(p)) return GREY;
  if (layer.kind === "sensor") {
    return readingColour(p.sensor_type, (past?.latest ?? layer.latest).get(String(feature.id)), p.thresholds) || fallback;
  }
  if (layer.kind === "citizen_report") return reportColour(p.report_status || p.status);
  return fallback;
}

/** A moving feature where it was at `moment` (the time slider), from its track. */
function placedAt(layer, feature, moment) {
  const fix = positionAt(layer.tracks.get(String(feature.id)) || [], moment);
  return fix ? {...feature, geometry: {type: "Point", coordinates: [fix[0], fix[1]]}} : feature;
}

/**
 * A point layer's features as typed arrays (positions, fill colours) plus the feature list for
 * picking: deck.gl uploads them as they are, with no per-feature accessor calls (as the bare page).
 */
function pointArrays(layer, moment) {
  const fallback = styleFill(layer.style, 235);
  const found = [...layer.features.values()].filter((f) => f.geometry?.type === "Point" && layer.matches(f.properties));
  const features = moment !== null && layer.tracks.size ? found.map((f) => placedAt(layer, f, moment)) : found;
  const positions = new Float64Array(features.length * 2);
  const colours = new Uint8Array(features.length * 4);
  features.forEach((f, i) => {
    positions.set(f.geometry.coordinates.slice(0, 2), 2 * i);
    const [r, g, b, a = 255] = pointColour(layer, f, fallback);
    colours.set([r, g, b, a], 4 * i);
  });
  return {features, positions, colours};
}

/** Binary points that still pick their feature (deck.gl only finds objects in array data). */
class FeaturePointsLayer extends ScatterplotLayer {
  getPickingInfo(params) {
    const info = super.getPickingInfo(params);
    if (info.index >= 0 && this.props.features) info.object = this.props.features[info.index];
    return info;
  }
}
FeaturePointsLayer.layerName = "FeaturePointsLayer";

function pointLayer(layer, moment) {
  const {features, positions, colours} = memo(layer, "points", [layer.version, moment], () => pointArrays(layer, moment));
  return new FeaturePointsLayer({
    id: layer.id, features, data: {length: features.length, attributes: {
      getPosition: {value: positions, size: 2}, getFillColor: {value: colours, size: 4, normalized: true}}},
    visible: layer.visible, pickable: true, radiusUnits: "pixels", getRadius: layer.style.radius || 6,
    stroked: true, getLineColor: [255, 255, 255, 230], lineWidthUnits: "pixels", getLineWidth: 1.5,
  });
}

/** A camera's field of view: a sector from heading ± fov/2 out to range_m (metres). */
export function fovCone(lon, lat, heading, fov, range, steps = 12) {
  const metresPerDegLat = 111320;
  const metresPerDegLon = metresPerDegLat * Math.cos((lat * Math.PI) / 180);
  const ring = [[lon, lat]];
  for (let i = 0; i <= steps; i++) {
    const bearing = ((heading - fov / 2 + (fov * i) / steps) * Math.PI) / 180;
    ring.push([lon + (range * Math.sin(bearing)) / metresPerDegLon, lat + (range * Math.cos(bearing)) / metresPerDegLat]);
  }
  ring.push([lon, lat]);
  return ring;
}

function cameraCones(layer) {
  return new SolidPolygonLayer({
    id: `${layer.id}--fov`, data: memo(layer, "cones", [layer.version], () => cones(layer)), visible: layer.visible,
    getPolygon: (d) => d.polygon,
    getFillColor: (d) => (d.offline ? [150, 150, 150, 60] : [...styleFill(layer.style).slice(0, 3), 70]),
    updateTriggers: {getFillColor: [layer.version]},
  });
}

function cones(layer) {
  const cones = [];
  for (const f of layer.features.values()) {
    const p = f.properties || {};
    if (f.geometry?.type !== "Point" || typeof p.heading_deg !== "number" || !layer.matches(p)) continue;
    const [lon, lat] = f.geometry.coordinates;
    cones.push({polygon: fovCone(lon, lat, p.heading_deg, p.fov_deg ?? 60, p.range_m ?? 50), offline: isOffline(p)});
  }
  return cones;
}

function boatTracks(layer, moment) {
  const until = moment ?? Infinity;
  const paths = memo(layer, "tracks", [layer.version, moment], () => [...layer.tracks.entries()]
    .map(([id, fixes]) => ({id, path: fixes.filter((f) => f[2] <= until).map((f) => [f[0], f[1]])}))
    .filter((d) => d.path.length > 1));
  return new PathLayer({
    id: `${layer.id}--tracks`, data: paths, visible: layer.visible, getPath: (d) => d.path,
    getColor: [...styleFill(layer.style).slice(0, 3), 160], widthUnits: "pixels", getWidth: 2,
    updateTriggers: {getPath: [layer.version, moment]},
  });
}

/** Area names (wards, provinces) inside their zoom band; outside it no layer is made at all. */
function labelLayer(layer, zoom) {
  const [from, to] = layer.labelZooms || [0, 99];
  if (!layer.labels?.length || zoom < from || zoom >= to) return null;
  return new TextLayer({
    id: `${layer.id}--labels`, data: layer.labels, visible: layer.visible, getPosition: (d) => d.position,
    getText: (d) => d.text, characterSet: "auto", fontFamily: FONT, getSize: 14, sizeUnits: "pixels",
    getColor: [38, 50, 56, 255], outlineWidth: 4, outlineColor: [255, 255, 255, 230], fontSettings: {sdf: true},
    billboard: true, updateTriggers: {getText: [layer.version]},
  });
}

const BUILDERS = {building: buildingLayer, road: roadLayer, water: waterLayer, admin_area: areaLayer};

/**
 * The deck.gl layers of one map layer (a list: a layer may add cones, tracks or labels), the same
 * instances while nothing they show changes, so a redraw for one live layer leaves the others be.
 * A layer toggled off is not made at all (made when first ticked). `base` keeps only the tiles:
 * the first frame compiles the shaders the city needs and nothing else.
 */
export function deckLayers(layer, zoom, moment = null, base = false) {
  if (!layer.visible) return [];
  if (base && layer.mode !== "tiles") return [];
  const [from, to] = layer.labelZooms || [0, 99];
  const labelled = !base && zoom >= from && zoom < to;
  return memo(layer, "deck", [layer.version, layer.tileVersion, layer.visible, moment, labelled, layer.mode], () => {
    if (layer.mode === "tiles") {
      const build = BUILDERS[layer.kind] || polygonSiteLayer;
      return [build(layer), labelled && labelLayer(layer, zoom)].filter(Boolean);
    }
    const found = [];
    if (layer.kind === "camera") found.push(cameraCones(layer));
    if (layer.kind === "boat") found.push(boatTracks(layer, moment));
    found.push(pointLayer(layer, moment));
    return found;
  });
}

/** Order on the map: areas under water under roads under buildings under everything else. */
export const DRAW_ORDER = {admin_area: 0, water: 1, road: 2, tourist_site: 3, building: 4};
