# SPDX-License-Identifier: AGPL-3.0-or-later
"""Routes of the layers API (OGC API Features / Tiles, spatial queries, exports).

Each module adds its own patterns here.
"""
urlpatterns: list = []
