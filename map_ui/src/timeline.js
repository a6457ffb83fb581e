// SPDX-License-Identifier: AGPL-3.0-or-later
// The time slider: the last 24 hours, in 5-minute steps. At the right end the map is live; anywhere
// else it shows the events as they stood then (active in the 24 h before it, each with the status
// it had at that moment, from /api/events?as_of=), colours sensors by their latest reading at that
// moment (grey if they were offline then, from /collections/{id}/latest?datetime=), puts moving
// features (boats) where their tracks had them, and the replay button plays the day in a minute.
import { config } from "./config.js";
import { byId } from "./dom.js";
import { readingsAt } from "./feeds.js";
import { formatDate, t } from "./i18n.js";

/** The layers whose colour depends on readings: visible sensor points. */
const readingLayers = (app) => app.layers.filter((l) => l.visible && l.kind === "sensor" && l.mode === "points");

/** Each reading layer's values as of `moment`; a layer whose request fails shows no values then. */
async function pastReadings(app, moment) {
  const layers = readingLayers(app);
  const answers = await Promise.all(layers.map((l) => readingsAt(l, moment).catch((e) => { app.fail(e); return null; })));
  return new Map(layers.map((l, i) => [l.id, answers[i] || {latest: new Map(), offline: new Set()}]));
}

/** Draw `layers` with their past readings (a Map id -> {latest, offline}), or live ones (null). */
function showReadings(app, readings) {
  for (const layer of app.layers) {
    const past = readings?.get(layer.id) ?? null;
    if (past === null && !layer.replay) continue;
    layer.replay = past;       // render.js colours from it instead of the live values
    layer.touch();
  }
}

const DAY_MIN = 1440;
const REPLAY_STEP_MIN = 5;
const REPLAY_TICK_MS = 200;

export function setupTime(app) {
  const slider = byId("time-slider"), label = byId("time-label"), replay = byId("replay");
  if (!slider) return null;
  let timer = null, asked = 0, busy = false, pending = null;

  // One request at a time; while it runs only the latest moment asked for waits (a replay
  // moves faster than a loaded server answers). The answer shown is always the latest asked.
  const fetchMoment = async (moment, ticket) => {
    if (busy) {
      pending = [moment, ticket];
      return false;
    }
    busy = true;
    try {
      const [events, readings] = await Promise.all([
        config.user.read_events ? app.store.loadAsOf(moment) : [], pastReadings(app, moment)]);
      if (ticket !== asked) return false;
      app.store.history = events;
      showReadings(app, readings);
      return true;
    } catch (e) {
      app.fail(e);
      return false;
    } finally {
      busy = false;
      if (pending) {
        const [m, tk] = pending;
        pending = null;
        fetchMoment(m, tk).then((ok) => ok && apply(m, tk));
      }
    }
  };

  const apply = (moment, ticket) => {
    if (ticket !== asked) return;
    app.moment = moment;
    app.store.cutoff = moment;
    label.textContent = formatDate(moment);
    app.status.moment = app.moment;
    app.store.changed();
  };

  const show = async (minutes) => {
    const ticket = ++asked;
    if (minutes >= DAY_MIN) {
      app.moment = null;
      app.store.cutoff = null;
      showReadings(app, null);
      label.textContent = t("now");
    } else {
      const moment = Date.now() - (DAY_MIN - minutes) * 60000;
      if (await fetchMoment(moment, ticket)) apply(moment, ticket);
      return;
    }
    app.status.moment = app.moment;
    app.store.changed();
  };

  slider.addEventListener("input", () => show(Number(slider.value)));
  replay.addEventListener("click", () => {
    if (timer) {
      clearInterval(timer);
      timer = null;
      return;
    }
    slider.value = 0;
    show(0);
    timer = setInterval(() => {
      const next = Math.min(DAY_MIN, Number(slider.value) + REPLAY_STEP_MIN);
      slider.value = next;
      show(next);
      if (next >= DAY_MIN) {
        clearInterval(timer);
        timer = null;
      }
    }, REPLAY_TICK_MS);
  });
  label.textContent = t("now");
  return {show};
}
