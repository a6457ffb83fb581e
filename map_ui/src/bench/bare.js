// SPDX-License-Identifier: AGPL-3.0-or-later
// The bare deck.gl page of bench/map.py: the same Huế tiles and the same live points as the
// console, with nothing else (no panels, no socket, no labels, no events): the limit the console
// is measured against. Query: ?lon=&lat=&zoom=&pitch=&bearing=&extrude=SLUG&layers=SLUG,SLUG…
import { Deck, MapView } from "@deck.gl/core";
import { MVTLayer } from "@deck.gl/geo-layers";
import { GeoJsonLayer } from "@deck.gl/layers";
import { MVTLoader } from "@loaders.gl/mvt";
import { livePoints } from "./points.js";

const q = new URLSearchParams(location.search);
const view = {longitude: +q.get("lon"), latitude: +q.get("lat"), zoom: +q.get("zoom"), pitch: +(q.get("pitch") || 50),
  bearing: +(q.get("bearing") || -15)};
const extrude = q.get("extrude");
const bench = window.bench = {scriptAt: performance.now(), start: performance.timeOrigin, firstRender: null, idle: null, frames: [], live: null};

// First render, as in the console: the first frame drawn once every tile layer has its first tile.
const arrived = new Set();
const base = (q.get("layers") || "").split(",").filter(Boolean).map((slug) => new MVTLayer({
  id: slug, onTileLoad: () => arrived.add(slug), onTileError: () => arrived.add(slug), data: `/tiles/${slug}/{z}/{x}/{y}.mvt`, loaders: [MVTLoader], loadOptions: {worker: false}, binary: false,
  minZoom: 0, maxZoom: 18, extruded: slug === extrude, getElevation: (f) => f.properties.height_m ?? 6,
  getFillColor: [200, 190, 170, 200], getLineColor: [120, 120, 120, 255], lineWidthMinPixels: 1,
  renderSubLayers: (props) => new GeoJsonLayer(props),
}));

let live = null;
const deck = bench.deck = new Deck({
  parent: document.getElementById("map"), views: new MapView({repeat: false}), initialViewState: view, controller: true,
  useDevicePixels: 1, deviceProps: {webgl: {antialias: false}}, layers: base,
  onAfterRender: () => {
    const now = performance.now();
    if (bench.firstRender === null && base.length && arrived.size === base.length) bench.firstRender = now;
    bench.frames.push(now);
    if (bench.idle === null && base.every((l) => l.isLoaded)) bench.idle = now;
  },
});

function loop() {
  if (!live) return;
  live.step();
  deck.setProps({layers: [...base, live.layer()]});
  requestAnimationFrame(loop);
}

bench.startLive = (n, bounds) => {
  live = livePoints(n, bounds);
  bench.frames = [];
  requestAnimationFrame(loop);
};
bench.stopLive = () => {
  live = null;
  deck.setProps({layers: base});
};
