# SPDX-License-Identifier: AGPL-3.0-or-later
"""File import and export for layers: readers, CRS handling, exporters.

The ``import`` and ``export`` management commands are thin wrappers around
:func:`twin.io.importer.import_file` and :mod:`twin.io.exporters`. Features
are always written through :func:`twin.services.write_features`.
"""
