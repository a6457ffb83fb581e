// SPDX-License-Identifier: AGPL-3.0-or-later
// The page's start-up facts, rendered by map_ui/views.py into <script id="map-config">.
export const config = JSON.parse(document.getElementById("map-config").textContent);
