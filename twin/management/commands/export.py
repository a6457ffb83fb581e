# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin export --layer SLUG [-o FILE]``: write a layer to GeoJSON or GeoPackage.

A thin wrapper over :mod:`twin.io.exporters`; see docs/import-export.md.
"""
from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from twin.errors import TwinError
from twin.io.exporters import FORMATS, ExportFilter, export_layer, format_for
from twin.models import FeatureStatus, Layer


class _Sink:
    """Lets the exporter stream into the command's stdout without added newlines."""

    def __init__(self, wrapper) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, ending="")


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        raise CommandError(f"--bbox must be four numbers west,south,east,north, not {text!r}") from None
    return west, south, east, north


class Command(BaseCommand):
    help = "Export a layer to GeoJSON (streamed, EPSG:4326) or GeoPackage, with its attribution."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--layer", required=True, help="Slug of the layer to export.")
        parser.add_argument("-o", "--output", help="Output file (default: SLUG.geojson or SLUG.gpkg); "
                            "'-' writes GeoJSON to standard output.")
        parser.add_argument("--format", choices=sorted(FORMATS), help="Output format (default: from the extension).")
        parser.add_argument("--bbox", help="Only features intersecting west,south,east,north (degrees).")
        parser.add_argument("--where-status", choices=FeatureStatus.values, help="Only features with this status.")
        parser.add_argument("--no-progress", action="store_true", help="Never show a progress bar.")

    def handle(self, *args, **options) -> None:
        layer = Layer.objects.select_related("city").filter(slug=options["layer"]).first()
        if layer is None:
            raise CommandError(f"no layer {options['layer']!r}")
        output = options["output"] or f"{layer.slug}.{options['format'] or 'geojson'}"
        progress = not options["no_progress"] and sys.stderr.isatty()
        try:
            fmt = format_for(output, options["format"])
            filt = ExportFilter(bbox=_bbox(options["bbox"]) if options["bbox"] else None,
                                status=options["where_status"])
            count = export_layer(layer, output, fmt, filt, stdout=_Sink(self.stdout), progress=progress)
        except TwinError as exc:
            raise CommandError(str(exc)) from None
        if output != "-":
            self.stdout.write(self.style.SUCCESS(f"{layer.slug}: {count} features written to {output} ({fmt})"))
        else:
            self.stderr.write(f"{layer.slug}: {count} features written to standard output")
