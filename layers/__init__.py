# SPDX-License-Identifier: AGPL-3.0-or-later
"""The layers API: OGC API Features and Tiles, spatial queries and exports."""
