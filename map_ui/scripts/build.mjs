// SPDX-License-Identifier: AGPL-3.0-or-later
// Copy vendored browser builds from node_modules into Django's static tree.
// The admin map widget loads these from our own server, never from a CDN.
// Output (static/map_ui/vendor/) is build output: gitignored, rebuilt by `make deps`.
import { copyFileSync, mkdirSync, existsSync, writeFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vendor = join(root, "static", "map_ui", "vendor");

// [package, file inside the package, destination under vendor/]
const COPIES = [
  ["ol", "dist/ol.js", "ol/ol.js"],
  ["ol", "ol.css", "ol/ol.css"],
];

const versions = {};
for (const [pkg, from, to] of COPIES) {
  const source = join(root, "node_modules", pkg, from);
  if (!existsSync(source)) {
    console.error(`missing ${source}: run \`npm ci\` in map_ui/ first`);
    process.exit(1);
  }
  const target = join(vendor, to);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
  versions[pkg] = JSON.parse(readFileSync(join(root, "node_modules", pkg, "package.json"), "utf8")).version;
  console.log(`copied ${pkg}/${from} -> static/map_ui/vendor/${to}`);
}
writeFileSync(join(vendor, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
