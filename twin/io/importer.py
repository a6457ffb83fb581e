# SPDX-License-Identifier: AGPL-3.0-or-later
"""Import one file into one layer: size guard → read → CRS → reproject → map → write.

Everything that can be checked is checked before the database is touched.
The write (and the layer, when ``--create-layer`` makes it) happens in one
transaction through :func:`twin.services.write_features`, so a rejected
import leaves the database as it was; ``dry_run`` runs the same write and
rolls it back, to report what would happen.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import shapely
from django.conf import settings
from django.db import transaction
from pydantic import ValidationError

from twin.errors import ImportRejected, InvalidInput
from twin.io.crs import Reprojection, describe_crs, parse_crs, reprojection_to_wgs84, untransformable
from twin.io.mapping import FieldMapping, build_rows, resolve_mapping, row_label
from twin.io.readers import CsvOptions, SourceTable, check_size, read_source
from twin.models import City, GeometryType, Layer
from twin.services import LayerSpec, WriteReport, ensure_layer, write_features

logger = logging.getLogger(__name__)

MAX_LISTED_PROBLEMS = 200
_MULTI = {"Point": "MultiPoint", "LineString": "MultiLineString", "Polygon": "MultiPolygon"}
# shapely.get_type_id codes (GEOS GeomTypeId).
_TYPE_NAMES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon"}


@dataclass(frozen=True, slots=True)
class NewLayer:
    """What ``--create-layer`` makes when the layer does not exist yet."""

    kind: str
    title_vi: str
    title_en: str = ""
    is_public: bool = False
    attribution: str = ""
    geometry_type: str | None = None  # inferred from the file when None
    city: str | None = None  # settings.DEFAULT_CITY when None


@dataclass(frozen=True, slots=True)
class ImportOptions:
    source_layer: str | None = None
    crs: str | None = None
    encoding: str | None = None
    csv: CsvOptions = field(default_factory=CsvOptions)
    id_field: str | None = None
    name_field: str | None = None
    height_field: str | None = None
    status_field: str | None = None
    on_invalid: Literal["repair", "reject"] = "repair"
    dry_run: bool = False
    create: NewLayer | None = None
    progress: bool = False


@dataclass(slots=True)
class ImportResult:
    report: WriteReport
    source_crs: str
    reprojection: Reprojection
    mapping: FieldMapping
    warnings: list[str]
    layer_created: bool
    dry_run: bool


def import_file(path: Path, layer_slug: str, options: ImportOptions) -> ImportResult:
    """Import ``path`` into ``layer_slug``; raise a :class:`~twin.errors.TwinError` on any problem.

    Parameters
    ----------
    path:
        GeoJSON, GeoPackage, shapefile (or zip), or CSV with lon/lat columns.
    layer_slug:
        Target layer; it must exist unless ``options.create`` describes it.

    Returns
    -------
    ImportResult
        The write report (counts, repaired rows), the CRS and operation used,
        the column mapping and warnings.
    """
    check_size(path, settings.IMPORT_MAX_BYTES)
    layer = Layer.objects.select_related("city").filter(slug=layer_slug).first()
    if layer is None and options.create is None:
        raise InvalidInput(f"no layer {layer_slug!r}; create it with --create-layer --kind KIND --title-vi ...")
    if layer is not None and options.create is not None and options.create.kind != layer.kind:
        raise InvalidInput(f"layer {layer_slug!r} exists with kind {layer.kind!r}, not {options.create.kind!r}")
    city = layer.city if layer is not None else _city(options.create.city)
    table = read_source(path, source_layer=options.source_layer, encoding=options.encoding,
                        csv_options=options.csv, progress=options.progress)
    if not len(table):
        raise ImportRejected(f"{path.name} holds no features; nothing was written")
    source_crs, reprojection = _source_crs(table, options.crs, city)
    geoms, geometry_problems = _reproject(table, reprojection)
    mapping, warnings = resolve_mapping(table, id_field=options.id_field, name_field=options.name_field,
                                        height_field=options.height_field, status_field=options.status_field)
    rows, problems = build_rows(table, geoms, mapping, problems=geometry_problems, progress=options.progress)
    if problems:
        raise ImportRejected(f"{len(problems)} problem(s) in {path.name}; nothing was written",
                             problems=problems[:MAX_LISTED_PROBLEMS])
    with transaction.atomic():
        created = layer is None
        if created:
            layer = _create_layer(layer_slug, options.create, city, geoms)
        report = write_features(layer, rows, on_invalid=options.on_invalid, progress=options.progress)
        if options.dry_run:
            transaction.set_rollback(True)
    return ImportResult(report=report, source_crs=source_crs, reprojection=reprojection, mapping=mapping,
                        warnings=warnings, layer_created=created, dry_run=options.dry_run)


def _city(slug: str | None) -> City:
    slug = slug or settings.DEFAULT_CITY
    city = City.objects.filter(slug=slug).first()
    if city is None:
        raise InvalidInput(f"no city {slug!r} for the new layer; load it first (twin load-city) or pass --city")
    return city


def _source_crs(table: SourceTable, override: str | None, city: City | None) -> tuple[str, Reprojection]:
    """The CRS to read coordinates in: ``--crs``, else the file's, else EPSG:4326 for CSV.

    GDAL reports GeoJSON without a ``crs`` member as EPSG:4326 (RFC 7946 §4);
    a shapefile without ``.prj`` has none and is refused rather than guessed.
    """
    if override:
        crs = parse_crs(override, origin="--crs")
    elif table.crs:
        crs = parse_crs(table.crs, origin=table.path.name)
    elif table.driver == "CSV":
        crs = parse_crs("EPSG:4326", origin="the CSV default")
    else:
        raise ImportRejected(f"unknown CRS: {table.path.name} does not say which coordinate reference system "
                             "it uses (a shapefile needs its .prj); pass it with --crs EPSG:xxxx")
    area = tuple(city.extent.extent) if city is not None and city.extent else None
    return describe_crs(crs), reprojection_to_wgs84(crs, area)


def _reproject(table: SourceTable, reprojection: Reprojection) -> tuple[np.ndarray, dict[int, str]]:
    """Reproject all geometries at once; rows PROJ cannot transform are reported."""
    geoms = reprojection.apply(table.geoms)
    problems = {int(i): f"coordinates cannot be transformed from {describe_crs(reprojection.source)} "
                        "(outside the area of that CRS?)" for i in untransformable(geoms)}
    for i in problems:
        geoms[i] = None
    return geoms, problems


def _infer_geometry_type(geoms: np.ndarray) -> str:
    """One type → that type; single and multi of one dimension → the multi type; else Geometry."""
    present = geoms[~shapely.is_missing(geoms)]
    names = {_TYPE_NAMES.get(t, "Geometry") for t in np.unique(shapely.get_type_id(present)).tolist()}
    if len(names) == 1 and next(iter(names)) in GeometryType.values:
        return next(iter(names))
    for single, multi in _MULTI.items():
        if names and names <= {single, multi}:
            return multi
    return GeometryType.ANY


def _create_layer(slug: str, new: NewLayer, city: City, geoms: np.ndarray) -> Layer:
    try:
        spec = LayerSpec(slug=slug, title_vi=new.title_vi, title_en=new.title_en, kind=new.kind,
                         geometry_type=new.geometry_type or _infer_geometry_type(geoms), is_public=new.is_public,
                         attribution=new.attribution)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise InvalidInput(f"cannot create layer {slug!r}: {'; '.join(problems)}") from None
    logger.info("creating layer %s (%s, %s) in %s", slug, spec.kind, spec.geometry_type, city.slug)
    return ensure_layer(spec, city=city)


__all__ = ["ImportOptions", "ImportResult", "NewLayer", "import_file", "row_label"]
