// SPDX-License-Identifier: AGPL-3.0-or-later
// Search by place name, ward or feature id: wards from the loaded area labels, feature ids and
// names from the layers held in the page, and names of tile-drawn layers through OGC API
// Features (a CQL2 LIKE filter on `name`).
import { getJSON } from "./api.js";
import { config } from "./config.js";
import { byId, el } from "./dom.js";
import { t } from "./i18n.js";
import { labelPoint } from "./catalog.js";

const MAX = 12;
const fold = (s) => String(s ?? "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase();

function localHits(layers, q) {
  const hits = [];
  for (const layer of layers) {
    for (const label of layer.labels || []) {
      if (fold(label.text).includes(q) || label.code === q) hits.push({title: label.text, sub: layer.title, position: label.position, zoom: 14});
    }
    for (const [id, f] of layer.features) {
      if (fold(id) === q || fold(f.properties?.name).includes(q)) {
        hits.push({title: f.properties?.name || id, sub: `${layer.title} · ${id}`, position: labelOf(f), zoom: 17, layer, id});
      }
    }
  }
  return hits;
}

function labelOf(feature) {
  const g = feature.geometry;
  if (!g) return null;
  return g.type === "Point" ? g.coordinates : labelPoint(g);
}

async function remoteHits(layers, raw) {
  const searchable = layers.filter((l) => l.mode === "tiles" && ["tourist_site", "poi", "building"].includes(l.kind));
  const pattern = `%${raw.replace(/'/g, "''")}%`;
  const answers = await Promise.allSettled(searchable.map((layer) =>
    getJSON(`${config.urls.collections}/${encodeURIComponent(layer.id)}/items`, {filter: `name LIKE '${pattern}'`, limit: 5})
      .then((body) => (body.features || []).map((f) => ({title: f.properties?.name || f.id, sub: layer.title,
        position: labelOf(f), zoom: 17, layer, id: String(f.id)})))));
  return answers.flatMap((a) => (a.status === "fulfilled" ? a.value : []));
}

export function setupSearch(getLayers, onPick) {
  const form = byId("search-form"), input = byId("search"), results = byId("search-results");
  if (!form) return;
  const show = (hits) => {
    results.hidden = false;
    results.replaceChildren(...(hits.length ? hits.slice(0, MAX).map((h) => el("li", {},
      el("button", {type: "button", onclick: () => { results.hidden = true; onPick(h); }}, h.title, el("small", {}, h.sub))))
      : [el("li", {class: "empty"}, t("search_none"))]));
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const raw = input.value.trim();
    if (!raw) return;
    const hits = localHits(getLayers(), fold(raw)).filter((h) => h.position);
    show(hits);
    if (hits.length < MAX) show([...hits, ...(await remoteHits(getLayers(), raw)).filter((h) => h.position)]);
  });
}
