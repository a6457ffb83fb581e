// SPDX-License-Identifier: AGPL-3.0-or-later
// The /ws/live socket (docs/live.md): the browser's session authenticates it. Feature updates
// are queued as they arrive and applied once per animation frame, keeping only the latest state
// of each feature, because a software-rendered frame takes far longer than a message. Events
// go to the alert list at once.
import { config } from "./config.js";

const RECONNECT_MS = [500, 1000, 2000, 5000, 10000];

export class LiveSocket {
  /**
   * @param {object} handlers  {onEvent(msg), onFeatures(list), onResync(), onState(state)}
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.subscription = null;
    this.pendingFeatures = new Map();   // "layer/id" -> latest message
    this.scheduled = false;
    this.attempt = 0;
    this.socket = null;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${config.urls.live}`);
    this.socket = socket;
    socket.onmessage = (m) => this.receive(m.data);
    socket.onclose = (e) => {
      this.handlers.onState?.("off", e.code);
      if (e.code === 4401 || e.code === 4403) return;      // no rights: retrying will not help
      const wait = RECONNECT_MS[Math.min(this.attempt++, RECONNECT_MS.length - 1)];
      setTimeout(() => this.connect(), wait);
    };
  }

  /** Replace the subscription (viewport, layers, events); sent again after every reconnect. */
  subscribe(subscription) {
    this.subscription = subscription;
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({type: "subscribe", ...subscription}));
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.type) {
      case "hello":
        this.attempt = 0;
        if (this.subscription) this.subscribe(this.subscription);
        break;
      case "subscribed":
        this.handlers.onState?.(message.live ? "on" : "waiting");
        break;
      case "event":
        // Events are rare and each one matters: the alert list shows it at once; the map
        // picks it up with the next frame.
        this.handlers.onEvent?.(message);
        break;
      case "feature": {
        // The latest state wins, but a status-only message must not drop the values of a reading
        // that waits in the same frame.
        const key = `${message.layer}/${message.id}`, held = this.pendingFeatures.get(key);
        if (held?.values && !message.values) Object.assign(message, {values: held.values, observed_at: held.observed_at});
        this.pendingFeatures.set(key, message);
        this.schedule();
        break;
      }
      case "resync":
        this.handlers.onResync?.();
        break;
      case "error":
        console.warn("live:", message.code, message.description);
        break;
      default:
    }
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.flush());
    // A hidden tab gets no animation frames: apply anyway within a second.
    setTimeout(() => this.flush(), 1000);
  }

  flush() {
    if (!this.scheduled) return;
    this.scheduled = false;
    const features = [...this.pendingFeatures.values()];
    this.pendingFeatures.clear();
    if (features.length) this.handlers.onFeatures?.(features);
  }
}
