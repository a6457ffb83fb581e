// SPDX-License-Identifier: AGPL-3.0-or-later
// Sub-pixel simplification of vector-tile geometry before deck.gl draws it. Under software WebGL
// (SwiftShader) a frame's cost is mostly per vertex: a PathLayer segment costs ~50 µs, and the
// tiles carry vertices 1/8 of a pixel apart (MVT extent 4096 on a 512-pixel tile). Dropping the
// vertices that move a line by less than a third of a tile pixel leaves the same picture and
// removes 20–45 % of the roads', rivers' and ward outlines' segments (Huế, zoom 13; docs/benchmarks.md).

/** Tolerance in tile-local units (MVTLayer's tiles span [0, 1] over 512 pixels). */
export const TOLERANCE = 0.35 / 512;

/**
 * The points of a line kept by Douglas–Peucker within `tolerance` (same units as the points).
 *
 * >>> dp([[0, 0], [0.5, 0.001], [1, 0]], 0.01).length
 * 2
 */
export function dp(points, tolerance) {
  const n = points.length;
  if (n < 3) return points;
  const tol2 = tolerance * tolerance;
  const keep = new Uint8Array(n);
  keep[0] = keep[n - 1] = 1;
  const stack = [0, n - 1];
  while (stack.length) {
    const b = stack.pop(), a = stack.pop();
    const [ax, ay] = points[a], [bx, by] = points[b];
    const dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    let worst = -1, at = -1;
    for (let i = a + 1; i < b; i++) {
      const [px, py] = points[i];
      let t = len2 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = ax + t * dx - px, ey = ay + t * dy - py, d2 = ex * ex + ey * ey;
      if (d2 > worst) { worst = d2; at = i; }
    }
    if (worst > tol2) {
      keep[at] = 1;
      stack.push(a, at, at, b);
    }
  }
  return points.filter((_, i) => keep[i]);
}

/** A polygon ring keeps its closure and at least four points, else it stays as it was. */
function ring(points, tolerance) {
  const kept = dp(points, tolerance);
  return kept.length >= 4 ? kept : points;
}

function geometry(g, tolerance) {
  switch (g?.type) {
    case "LineString": return {type: g.type, coordinates: dp(g.coordinates, tolerance)};
    case "MultiLineString": return {type: g.type, coordinates: g.coordinates.map((l) => dp(l, tolerance))};
    case "Polygon": return {type: g.type, coordinates: g.coordinates.map((r) => ring(r, tolerance))};
    case "MultiPolygon": return {type: g.type, coordinates: g.coordinates.map((p) => p.map((r) => ring(r, tolerance)))};
    default: return g;
  }
}

const cache = new WeakMap();

/**
 * A tile's GeoJSON features with sub-pixel vertices dropped, computed once per tile (the same
 * array on every redraw, so deck.gl keeps its attributes). Overzoomed tiles (at `maxZoom`, shown
 * magnified) are left as they are.
 */
export function simplifiedTile(features, tile, maxZoom) {
  if (!Array.isArray(features) || (tile?.index?.z ?? 0) >= maxZoom) return features;
  let found = cache.get(features);
  if (!found) {
    found = features.map((f) => ({...f, geometry: geometry(f.geometry, TOLERANCE)}));
    cache.set(features, found);
  }
  return found;
}
