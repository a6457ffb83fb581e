// SPDX-License-Identifier: AGPL-3.0-or-later
// Public results map: reports from our GeoJSON feed over ward outlines (offline, no remote tiles).
(function () {
  "use strict";
  const el = document.getElementById("map");
  const [cx, cy] = el.dataset.center.split(",").map(Number);
  const colours = { received: "#9e9e9e", verified: "#1976d2", assigned: "#7b1fa2", in_progress: "#f9a825",
                    resolved: "#2e7d32", rejected: "#616161" };
  const layers = [];
  if (el.dataset.wards) {
    layers.push(new ol.layer.Vector({ source: new ol.source.Vector({ url: el.dataset.wards, format: new ol.format.GeoJSON() }),
      style: new ol.style.Style({ stroke: new ol.style.Stroke({ color: "#7b3294", width: 1 }) }) }));
  }
  layers.push(new ol.layer.Vector({
    source: new ol.source.Vector({ url: el.dataset.feed, format: new ol.format.GeoJSON() }),
    style: (f) => new ol.style.Style({ image: new ol.style.Circle({ radius: 5,
      fill: new ol.style.Fill({ color: colours[f.get("status")] || "#e65100" }),
      stroke: new ol.style.Stroke({ color: "#fff", width: 1 }) }) }),
  }));
  const map = new ol.Map({ target: el, layers,
    view: new ol.View({ center: ol.proj.fromLonLat([cx, cy]), zoom: Number(el.dataset.zoom) || 12 }) });
  map.on("click", (e) => map.forEachFeatureAtPixel(e.pixel, (f) => { if (f.get("id")) { window.location = `/reports/${f.get("id")}/`; return true; } }));
  window.resultsMap = map;
})();
