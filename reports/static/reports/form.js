// SPDX-License-Identifier: AGPL-3.0-or-later
// Citizen form: pick the place on an offline OpenLayers map (ward outlines from our own
// layers API, no remote tiles) or from the phone's location; offer likely duplicates.
(function () {
  "use strict";
  const el = document.getElementById("map");
  const lonInput = document.getElementById("lon"), latInput = document.getElementById("lat");
  const place = document.getElementById("place"), dupBox = document.getElementById("duplicates");
  const category = document.getElementById("category");
  const dupUrl = document.currentScript.dataset.duplicates;
  const [cx, cy] = el.dataset.center.split(",").map(Number);
  const marker = new ol.Feature();
  const layers = [];
  if (el.dataset.wards) {
    layers.push(new ol.layer.Vector({
      source: new ol.source.Vector({ url: el.dataset.wards, format: new ol.format.GeoJSON() }),
      style: new ol.style.Style({ stroke: new ol.style.Stroke({ color: "#7b3294", width: 1 }),
                                  fill: new ol.style.Fill({ color: "rgba(194,165,207,0.15)" }) }),
    }));
  }
  layers.push(new ol.layer.Vector({ source: new ol.source.Vector({ features: [marker] }),
    style: new ol.style.Style({ image: new ol.style.Circle({ radius: 9, fill: new ol.style.Fill({ color: "#e65100" }),
                                                             stroke: new ol.style.Stroke({ color: "#fff", width: 2 }) }) }) }));
  const map = new ol.Map({ target: el, layers,
    view: new ol.View({ center: ol.proj.fromLonLat([cx, cy]), zoom: Number(el.dataset.zoom) || 13 }) });
  window.reportMap = map;
  function setPlace(lon, lat) {
    lonInput.value = lon.toFixed(6); latInput.value = lat.toFixed(6);
    marker.setGeometry(new ol.geom.Point(ol.proj.fromLonLat([lon, lat])));
    place.textContent = `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
    checkDuplicates();
  }
  window.setReportPlace = setPlace;
  map.on("click", (e) => { const [lon, lat] = ol.proj.toLonLat(e.coordinate); setPlace(lon, lat); });
  if (lonInput.value && latInput.value) setPlace(Number(lonInput.value), Number(latInput.value));
  document.getElementById("locate").addEventListener("click", () => {
    if (!navigator.geolocation) { place.textContent = "Không lấy được vị trí / Location unavailable"; return; }
    navigator.geolocation.getCurrentPosition(
      (pos) => { setPlace(pos.coords.longitude, pos.coords.latitude);
                 map.getView().animate({ center: ol.proj.fromLonLat([pos.coords.longitude, pos.coords.latitude]), zoom: 17 }); },
      () => { place.textContent = "Không lấy được vị trí, hãy chọn trên bản đồ / Location refused: tap the map"; },
      { enableHighAccuracy: true, timeout: 10000 });
  });
  function checkDuplicates() {
    dupBox.textContent = "";
    if (!category.value || !lonInput.value) return;
    const q = new URLSearchParams({ category: category.value, lon: lonInput.value, lat: latInput.value });
    fetch(`${dupUrl}?${q}`).then((r) => (r.ok ? r.json() : { duplicates: [] })).then((body) => {
      if (!body.duplicates.length) return;
      const p = document.createElement("p");
      p.textContent = "Có thể đã có người phản ánh việc này (trong 50 m) / Possibly already reported within 50 m:";
      dupBox.appendChild(p);
      for (const d of body.duplicates) {
        const a = document.createElement("a");
        a.href = `/reports/${d.id}/`; a.textContent = `#${d.id} ${d.category_name} (${d.status}) `;
        dupBox.appendChild(a);
      }
    });
  }
  category.addEventListener("change", checkDuplicates);
  const anon = document.getElementById("anonymous"), contact = document.getElementById("contact-fields");
  const toggle = () => { contact.hidden = anon.checked; };
  anon.addEventListener("change", toggle); toggle();
})();
