// SPDX-License-Identifier: AGPL-3.0-or-later
// The time slider: the last 24 hours, in 5-minute steps. At the right end the map is live; anywhere
// else it shows the events that had occurred by then (within the 24 h before it) and puts moving
// features (boats) where their tracks had them, and the replay button plays the day in a minute.
import { byId } from "./dom.js";
import { formatDate, t } from "./i18n.js";

const DAY_MIN = 1440;
const REPLAY_STEP_MIN = 5;
const REPLAY_TICK_MS = 200;

export function setupTime(app) {
  const slider = byId("time-slider"), label = byId("time-label"), replay = byId("replay");
  if (!slider) return null;
  let history = null, timer = null;

  const show = async (minutes) => {
    if (minutes >= DAY_MIN) {
      app.moment = null;
      app.store.cutoff = null;
      label.textContent = t("now");
    } else {
      history ??= app.store.loadHistory().catch((e) => app.fail(e));
      await history;
      app.moment = Date.now() - (DAY_MIN - minutes) * 60000;
      app.store.cutoff = app.moment;
      label.textContent = formatDate(app.moment);
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
