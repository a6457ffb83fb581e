// SPDX-License-Identifier: AGPL-3.0-or-later
// The operator console's alert list and the event details with its lifecycle buttons.
import { config } from "./config.js";
import { byId, el } from "./dom.js";
import { formatDate, formatTime, localName, t } from "./i18n.js";
import { severityColour } from "./styles.js";

// Which next statuses a button offers from each status (the server enforces the real rules).
const NEXT = {new: ["acknowledged", "dispatched", "resolved", "dismissed"], acknowledged: ["dispatched", "resolved", "dismissed"],
  dispatched: ["resolved"]};
const BUTTON = {acknowledged: "acknowledge", dispatched: "dispatch", resolved: "resolve", dismissed: "dismiss"};

const cssColour = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;

export class AlertConsole {
  constructor(store, {onSelect, showDetails}) {
    this.store = store;
    this.onSelect = onSelect;
    this.showDetails = showDetails;
    this.list = byId("alert-list");
    this.count = byId("alert-count");
  }

  render() {
    if (!this.list) return;
    if (!config.user.read_events) {
      this.list.replaceChildren(el("li", {class: "empty"}, el("a", {href: "/map/login/?next=/map/"}, t("login_for_alerts"))));
      return;
    }
    const events = this.store.visible();
    this.count.textContent = events.length ? `(${events.length})` : "";
    if (!events.length) {
      this.list.replaceChildren(el("li", {class: "empty"}, t("no_alerts")));
      return;
    }
    this.list.replaceChildren(...events.slice(0, 200).map((e) => this.item(e)));
  }

  item(e) {
    return el("li", {class: `alert status-${e.status}`, dataset: {eventId: e.id, severity: e.severity}, tabindex: 0,
      onclick: () => this.onSelect(e), onkeydown: (k) => k.key === "Enter" && this.onSelect(e)},
    el("span", {class: "sev", style: `background:${cssColour(severityColour(e.severity))}`, title: `${t("severity")} ${e.severity}`}, e.severity),
    el("span", {class: "alert-title"}, e.title),
    el("span", {class: "alert-meta"}, formatTime(e.occurred_at), " · ", e.ward ? localName(e.ward.name_vi, e.ward.name_en) : "",
      " · ", t(`status_${e.status}`)));
  }

  /** The details of one event: where, who handles it, its history and the lifecycle buttons. */
  details(e) {
    const rows = [
      [t("severity"), e.severity], [t("category"), e.category], [t("status"), t(`status_${e.status}`)],
      [t("occurred"), formatDate(e.occurred_at)], [t("ward"), e.ward ? localName(e.ward.name_vi, e.ward.name_en) : "—"],
      [t("agency"), e.agency ? localName(e.agency.name_vi, e.agency.name_en) : "—"],
    ];
    const body = [el("h3", {}, e.title), el("dl", {}, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]))];
    if (config.user.handle_events && NEXT[e.status] && this.store.cutoff === null) body.push(this.actions(e));   // not in a replay
    if (e.history?.length) {
      body.push(el("h4", {}, t("history")), el("ol", {class: "history"}, e.history.map((h) =>
        el("li", {}, `${formatDate(h.at)} · ${t(`status_${h.to}`)} · ${h.actor || ""}${h.note ? ` — ${h.note}` : ""}`))));
    }
    return body;
  }

  actions(e) {
    const note = el("input", {type: "text", class: "note", placeholder: t("note"), "aria-label": t("note")});
    const message = el("p", {class: "error", role: "alert"});
    const buttons = NEXT[e.status].map((status) => el("button", {class: `transition to-${status}`, dataset: {status},
      onclick: async () => {
        try {
          await this.store.transition(e.id, status, note.value);
          this.showDetails(await this.store.detail(e.id));
        } catch (error) {
          message.textContent = `${t("transition_failed")}: ${error.message}`;
        }
      }}, t(BUTTON[status])));
    return el("div", {class: "actions"}, note, el("div", {}, buttons), message);
  }
}
