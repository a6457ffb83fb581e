// SPDX-License-Identifier: AGPL-3.0-or-later
// Build the front-end into Django's static tree, from npm packages only (no CDN at run time):
//  - vendor/: browser builds copied as they are (OpenLayers for the admin map widget);
//  - app/: the 3D operations map, src/*.js bundled by esbuild (deck.gl and our modules), and its CSS;
//  - fonts/: Be Vietnam Pro (Vietnamese and Latin subsets) for labels with diacritics.
// All output is gitignored and rebuilt by `make deps` (scripts/deps.sh runs `npm run build`).
import { copyFileSync, mkdirSync, existsSync, writeFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "static", "map_ui");
const vendor = join(out, "vendor");

// [package, file inside the package, destination under static/map_ui/]
const COPIES = [
  ["ol", "dist/ol.js", "vendor/ol/ol.js"],
  ["ol", "ol.css", "vendor/ol/ol.css"],
  ["@fontsource/be-vietnam-pro", "files/be-vietnam-pro-vietnamese-400-normal.woff2", "fonts/be-vietnam-pro-vietnamese-400-normal.woff2"],
  ["@fontsource/be-vietnam-pro", "files/be-vietnam-pro-latin-400-normal.woff2", "fonts/be-vietnam-pro-latin-400-normal.woff2"],
];

const versions = {};
for (const [pkg, from, to] of COPIES) {
  const source = join(root, "node_modules", pkg, from);
  if (!existsSync(source)) {
    console.error(`missing ${source}: run \`npm ci\` in map_ui/ first`);
    process.exit(1);
  }
  const target = join(out, to);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
  versions[pkg] = JSON.parse(readFileSync(join(root, "node_modules", pkg, "package.json"), "utf8")).version;
  console.log(`copied ${pkg}/${from} -> static/map_ui/${to}`);
}
mkdirSync(vendor, { recursive: true });
writeFileSync(join(vendor, "versions.json"), JSON.stringify(versions, null, 2) + "\n");

const result = await build({
  entryPoints: [join(root, "src", "main.js")],
  outfile: join(out, "app", "map.js"),
  bundle: true, format: "esm", target: "es2022", minify: true, sourcemap: true, legalComments: "linked",
  logLevel: "warning", metafile: true,
});
mkdirSync(join(out, "app"), { recursive: true });
copyFileSync(join(root, "src", "map.css"), join(out, "app", "map.css"));
// bench/map.py's bare deck.gl page (same tiles, same points, nothing else), served beside the app.
await build({
  entryPoints: [join(root, "src", "bench", "bare.js")], outfile: join(out, "bench", "bare.js"),
  bundle: true, format: "esm", target: "es2022", minify: true, logLevel: "warning",
});
copyFileSync(join(root, "src", "bench", "bare.html"), join(out, "bench", "bare.html"));
// loaders.gl falls back to worker scripts on unpkg.com when a loader runs in a worker. Ours run on
// the main thread (loadOptions.worker = false), but no CDN address may ship at all: point the
// fallback at a local path that does not exist (a 404 on 127.0.0.1, never a request outside), and
// refuse to build if any other CDN address remains in what the browser loads.
const LOADERS_CDN = ["https:", "", "unpkg.com", "@loaders.gl"].join("/");  // spelt in parts: this file is not served
const CDN = /https?:\/\/(unpkg\.com|cdn\.jsdelivr\.net|cdnjs\.cloudflare\.com|api\.mapbox\.com|fonts\.googleapis\.com)/g;
for (const file of ["app/map.js", "app/map.js.map", "bench/bare.js"]) {
  const path = join(out, file);
  const text = readFileSync(path, "utf8").replaceAll(LOADERS_CDN, "/static/map_ui/no-cdn/@loaders.gl");
  const left = text.match(CDN);
  if (left) {
    console.error(`${file} still names a CDN (${[...new Set(left)].join(", ")}): the map must run offline`);
    process.exit(1);
  }
  writeFileSync(path, text);
}
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`bundled src/main.js -> static/map_ui/app/map.js (${(bytes / 1024).toFixed(0)} KB with source map)`);
