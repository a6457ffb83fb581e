# SPDX-License-Identifier: AGPL-3.0-or-later
"""Cities as data: ``city.toml`` (config), OSM and vector readers, and the loader behind ``twin load-city``."""
