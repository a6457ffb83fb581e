// SPDX-License-Identifier: AGPL-3.0-or-later
// Synthetic live points for bench/map.py, shared by the console's bench hook and the bare
// deck.gl page so both draw exactly the same data the same way: binary attributes (typed
// arrays), 1 % of the points moved every frame, as a live feed would.
import { ScatterplotLayer } from "@deck.gl/layers";

/** A seeded generator, so every page and run draws the same points. */
function random(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export function livePoints(n, [x0, y0, x1, y1], seed = 42) {
  const rand = random(seed);
  const positions = new Float32Array(n * 2);
  const colours = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    positions[2 * i] = x0 + rand() * (x1 - x0);
    positions[2 * i + 1] = y0 + rand() * (y1 - y0);
    colours.set([25 + (i % 200), 113, 194, 220], 4 * i);
  }
  let frame = 0;
  const moving = Math.max(1, Math.floor(n / 100));
  return {
    count: n,
    /** Move 1 % of the points (a different slice each frame). */
    step() {
      frame += 1;
      const start = (frame * moving) % n;
      for (let k = 0; k < moving; k++) {
        const i = (start + k) % n;
        positions[2 * i] += (rand() - 0.5) * 1e-4;
        positions[2 * i + 1] += (rand() - 0.5) * 1e-4;
      }
    },
    layer(id = "bench-live") {
      return new ScatterplotLayer({
        id, data: {length: n, attributes: {getPosition: {value: positions, size: 2}, getFillColor: {value: colours, size: 4}}},
        radiusUnits: "pixels", getRadius: 3, updateTriggers: {getPosition: frame},
      });
    },
  };
}
