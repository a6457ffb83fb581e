// SPDX-License-Identifier: AGPL-3.0-or-later
// The layer panel: one toggle and one property filter ("property=value") per layer.
import { byId, el } from "./dom.js";
import { t } from "./i18n.js";
import { styleFill } from "./styles.js";

/** Parse "key=value" (spaces around either side ignored); null for empty, throws for nonsense. */
export function parseFilter(text) {
  const raw = text.trim();
  if (!raw) return null;
  const at = raw.indexOf("=");
  if (at <= 0 || at === raw.length - 1) throw new Error(t("filter_bad"));
  return {key: raw.slice(0, at).trim(), value: raw.slice(at + 1).trim()};
}

function row(layer, onChange) {
  const [r, g, b] = styleFill(layer.style);
  const error = el("span", {class: "error"});
  const filter = el("input", {type: "text", class: "layer-filter", placeholder: t("filter_placeholder"),
    "aria-label": `${t("filter")}: ${layer.title}`, dataset: {layer: layer.id}});
  filter.addEventListener("change", () => {
    try {
      layer.filter = parseFilter(filter.value);
      error.textContent = "";
    } catch (e) {
      error.textContent = e.message;
      return;
    }
    layer.touch();
    onChange(layer);
  });
  const toggle = el("input", {type: "checkbox", class: "layer-toggle", dataset: {layer: layer.id}, checked: layer.visible});
  toggle.addEventListener("change", () => {
    layer.visible = toggle.checked;
    layer.touch();         // new deck.gl layers when shown again: deck finalised the old ones
    onChange(layer);
  });
  return el("li", {class: `layer kind-${layer.kind}`, dataset: {layer: layer.id}},
    el("label", {}, toggle, el("span", {class: "swatch", style: `background:rgb(${r},${g},${b})`}), layer.title),
    el("details", {}, el("summary", {title: t("filter")}, "⚲"), filter, error));
}

export function renderPanel(layers, onChange) {
  const list = byId("layer-list");
  if (list) list.replaceChildren(...layers.map((layer) => row(layer, onChange)));
}
