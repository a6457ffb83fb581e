# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin import FILE --layer SLUG``: load a GeoJSON, GeoPackage, shapefile (zip) or CSV into a layer.

A thin wrapper over :func:`twin.io.importer.import_file`; see
docs/import-export.md. Any problem exits non-zero, lists the rows at fault
and writes nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from twin.errors import TwinError
from twin.io.importer import ImportOptions, ImportResult, NewLayer, import_file
from twin.io.readers import CsvOptions
from twin.models import GeometryType


class Command(BaseCommand):
    help = ("Import a GeoJSON, GeoPackage, zipped shapefile or CSV (lon/lat columns) into a layer, "
            "reprojecting to EPSG:4326 (VN-2000 included). Nothing is written if any row is wrong.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="File to import (.geojson, .json, .gpkg, .shp, .zip, .csv).")
        parser.add_argument("--layer", required=True, help="Slug of the target layer.")
        source = parser.add_argument_group("source")
        source.add_argument("--source-layer", help="Layer inside the file (GeoPackage table, shapefile in a zip).")
        source.add_argument("--crs", help="CRS of the coordinates (EPSG:9214 ...); overrides or supplies the file's.")
        source.add_argument("--encoding", help="Attribute encoding when the file does not declare it.")
        source.add_argument("--lon-col", help="CSV longitude (or easting) column; auto-detected by default.")
        source.add_argument("--lat-col", help="CSV latitude (or northing) column; auto-detected by default.")
        fields = parser.add_argument_group("columns")
        fields.add_argument("--id-field", help="Column holding the feature id (default: id, fid, code, osm_id ...).")
        fields.add_argument("--name-field", help="Column holding the name (default: name, ten, title).")
        fields.add_argument("--height-field", help="Column holding the height in metres (default: height_m, height).")
        fields.add_argument("--status-field", help="Column holding the status (default: status).")
        behaviour = parser.add_argument_group("behaviour")
        behaviour.add_argument("--on-invalid", choices=["repair", "reject"], default="repair",
                               help="Invalid geometry: repair with ST_MakeValid and report (default), or reject.")
        behaviour.add_argument("--dry-run", action="store_true", help="Validate and report; write nothing.")
        behaviour.add_argument("--no-progress", action="store_true", help="Never show progress bars.")
        create = parser.add_argument_group("creating the layer")
        create.add_argument("--create-layer", action="store_true", help="Create the layer if it does not exist.")
        create.add_argument("--kind", help="Feature kind of the new layer (camera, building, generic ...).")
        create.add_argument("--title-vi", help="Vietnamese title of the new layer.")
        create.add_argument("--title-en", default="", help="English title of the new layer.")
        create.add_argument("--public", action="store_true", help="Make the new layer readable without login.")
        create.add_argument("--attribution", default="", help="Attribution of the data (shown on maps, exports).")
        create.add_argument("--geometry-type", choices=GeometryType.values,
                            help="Geometry type of the new layer (default: inferred from the file).")
        create.add_argument("--city", help="City of the new layer (default: settings.DEFAULT_CITY).")

    def handle(self, *args, **options) -> None:
        progress = not options["no_progress"] and sys.stderr.isatty()
        try:
            result = import_file(options["file"], options["layer"], _import_options(options, progress))
        except TwinError as exc:
            raise CommandError(str(exc)) from None
        self._report(result)

    def _report(self, result: ImportResult) -> None:
        accuracy = (f", accuracy {result.reprojection.accuracy_m:g} m"
                    if result.reprojection.accuracy_m else "")
        self.stdout.write(f"CRS {result.source_crs} → EPSG:4326: {result.reprojection.description}{accuracy}")
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
        if result.report.repaired:
            self.stdout.write(self.style.WARNING(
                f"{len(result.report.repaired)} invalid geometr{'y' if len(result.report.repaired) == 1 else 'ies'}"
                " repaired with ST_MakeValid:"))
            for line in result.report.repaired:
                self.stdout.write(f"  - {line}")
        if result.layer_created:
            self.stdout.write(f"layer {result.report.layer} {'would be ' if result.dry_run else ''}created")
        prefix = "dry run, nothing written: " if result.dry_run else ""
        self.stdout.write(self.style.SUCCESS(prefix + result.report.summary()))


def _import_options(options: dict, progress: bool) -> ImportOptions:
    create = None
    if options["create_layer"]:
        missing = [flag for flag, key in (("--kind", "kind"), ("--title-vi", "title_vi")) if not options[key]]
        if missing:
            raise CommandError(f"--create-layer needs {' and '.join(missing)}")
        create = NewLayer(kind=options["kind"], title_vi=options["title_vi"], title_en=options["title_en"],
                          is_public=options["public"], attribution=options["attribution"],
                          geometry_type=options["geometry_type"], city=options["city"])
    return ImportOptions(
        source_layer=options["source_layer"], crs=options["crs"], encoding=options["encoding"],
        csv=CsvOptions(lon_col=options["lon_col"], lat_col=options["lat_col"]),
        id_field=options["id_field"], name_field=options["name_field"], height_field=options["height_field"],
        status_field=options["status_field"], on_invalid=options["on_invalid"], dry_run=options["dry_run"],
        create=create, progress=progress,
    )
