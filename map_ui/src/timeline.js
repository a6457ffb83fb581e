// SPDX-License-Identifier: AGPL-3.0-or-later
// The time slider: the last 24 hours, in 5-minute steps. At the right end the map is live; anywhere
// else it shows the events as they stood then (active in the 24 h before it, each with the status
// it had at that moment, from /api/events?as_of=) and puts moving features (boats) where their
// tracks had them, and the replay button plays the day in a minute.
import { byId } from "./dom.js";
import { formatDate, t } from "./i18n.js";

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
      const events = await app.store.loadAsOf(moment);
      if (ticket !== asked) return false;
      app.store.history = events;
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
