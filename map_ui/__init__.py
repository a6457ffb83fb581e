# SPDX-License-Identifier: AGPL-3.0-or-later
"""Front-end assets built from npm at build time and served as static files."""
