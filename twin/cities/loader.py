# SPDX-License-Identifier: AGPL-3.0-or-later
"""Load a city described by a :class:`~twin.cities.config.CityConfig`, in one transaction.

Order matters only for references: provinces first (the city's extent is
its province's box), then the city row, its wards (children of a province),
the agencies (jurisdictions are areas), and the feature layers, which
``write_features`` checks against the city's extent. Every write is an
upsert keyed by official code, agency code, layer slug or OSM id, and
layers are reloaded with ``replace=True``; running the load twice leaves
the database as one run would.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from django.db import transaction

from twin.cities.config import AdminFields, CityConfig, LayerDisplay, OsmLayerConfig
from twin.cities.osm import read_osm
from twin.cities.vector import layer_rows, read_records
from twin.errors import InvalidInput
from twin.models import AdminArea, AdminAreaPiece, AdminLevel, City, Feature, Layer
from twin.services.admin_areas import (AdminAreaRow, AgencyRow, CitySpec, ensure_city, finish_city,
                                       upsert_admin_areas, upsert_agencies)
from twin.services.features import FeatureRow, WriteReport, write_features
from twin.services.layers import LayerSpec, ensure_layer

logger = logging.getLogger(__name__)

_OSM_GEOMETRY = {"buildings": "MultiPolygon", "roads": "LineString", "water": "Geometry"}


@dataclass(slots=True)
class LoadedLayer:
    slug: str
    report: WriteReport
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CityLoadReport:
    city: City
    layers: list[LoadedLayer] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def repaired(self) -> list[str]:
        return [f"{layer.slug}: {item}" for layer in self.layers for item in layer.report.repaired]


Echo = Callable[[str], None]


def _silent(_: str) -> None:
    return None


@contextmanager
def _step(echo: Echo, label: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    echo(f"  {label} ({time.perf_counter() - started:.1f} s)")


def load_city(cfg: CityConfig, *, progress: bool = False, echo: Echo = _silent) -> CityLoadReport:
    """Load (or reload) a city: admin areas, agencies and every layer, atomically.

    Parameters
    ----------
    cfg:
        The validated city description.
    progress:
        Show progress bars (tqdm) for the long steps.
    echo:
        Receives one line per finished step and per layer summary.

    Returns
    -------
    CityLoadReport
        Per-layer write reports (with repaired geometries) and notes.
        Raises :class:`~twin.errors.InvalidInput` on bad data; nothing is written then.
    """
    started = time.perf_counter()
    with transaction.atomic():
        previous = City.objects.filter(slug=cfg.slug).values_list("sources", flat=True).first() or {}
        with _step(echo, "provinces"):
            province_layer = _layer(cfg.province.layer, None, "admin_area", "MultiPolygon", cfg.province.attribution)
            rows = _admin_rows(cfg.province.file, cfg.province.fields, AdminLevel.PROVINCE)
            if cfg.province.code not in {r.code for r in rows}:
                raise InvalidInput(f"province code {cfg.province.code!r} is not in {cfg.province.file.name}")
            provinces = upsert_admin_areas(province_layer, rows, progress=progress)
        province = AdminArea.objects.get(level=AdminLevel.PROVINCE, code=cfg.province.code)
        city = ensure_city(CitySpec(slug=cfg.slug, name_vi=cfg.name_vi, name_en=cfg.name_en, province=province,
                                    extent_margin_m=cfg.extent_margin_m, center=cfg.center, zoom=cfg.zoom,
                                    attribution=cfg.attribution))
        report = CityLoadReport(city, [LoadedLayer(province_layer.slug, provinces.features)])
        with _step(echo, "wards"):
            wards_layer = _layer(cfg.wards.layer, city, "admin_area", "MultiPolygon", cfg.wards.attribution)
            ward_rows = _admin_rows(cfg.wards.file, cfg.wards.fields, AdminLevel.WARD, parent=province.code)
            wards = upsert_admin_areas(wards_layer, ward_rows, parent_level=AdminLevel.PROVINCE,
                                       prune_under=province, progress=progress)
            notes = [f"{len(wards.removed)} ward(s) no longer in the file removed"] if wards.removed else []
            report.layers.append(LoadedLayer(wards_layer.slug, wards.features, notes))
        with _step(echo, "agencies"):
            agency_rows = _agency_rows(cfg, province, ward_rows)
            agencies = upsert_agencies(agency_rows, previous_codes=previous.get("agencies", ()))
            report.messages.append(agencies.summary())
        if cfg.osm is not None:
            with _step(echo, f"OpenStreetMap {cfg.osm.file.name}"):
                _load_osm(cfg, city, report, progress)
        for layer_cfg in cfg.layers:
            with _step(echo, layer_cfg.file.name):
                layer = _layer(layer_cfg, city, layer_cfg.kind, layer_cfg.geometry_type, layer_cfg.attribution)
                report.layers.append(LoadedLayer(layer.slug, write_features(
                    layer, layer_rows(layer_cfg), replace=True, progress=progress)))
        slugs = [loaded.slug for loaded in report.layers]
        report.messages += _drop_stale_layers(city, previous.get("layers", ()), slugs)
        finish_city(city, {"files": _fingerprints(cfg.source_files()), "layers": slugs,
                           "agencies": [row.code for row in agency_rows]})
    if settle_tables():
        report.messages.append("tables vacuumed and analyzed after the load")
    report.seconds = time.perf_counter() - started
    return report


# What a load rewrites in bulk. Agencies, layers and cities are a few hundred rows: autovacuum's own pass is cheap.
LOADED_MODELS = (Feature, AdminArea, AdminAreaPiece)


def settle_tables(models: tuple[type, ...] = LOADED_MODELS, using=None) -> bool:
    """``VACUUM (ANALYZE)`` the tables a load rewrote, once it has committed; False inside a transaction.

    Why: after a bulk load every row is new, so autovacuum's first pass over
    these tables must read all of them (visibility map, freezing) and sample
    tens of thousands of large geometries for statistics. Left to autovacuum,
    that pass lands minutes later in the middle of live ingestion and shows as
    a burst of latency (``docs/benchmarks.md``, 25 Nov). Doing it here puts
    the cost where the operator already waits. VACUUM cannot run inside a
    transaction, so a load inside one (tests, a caller's atomic block) skips it.
    ``using``: the Django connection to run it on (default: the default one).
    """
    from django.db import connection as default_connection

    connection = using or default_connection
    if connection.in_atomic_block:
        return False
    with connection.cursor() as cursor:
        names = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
        cursor.execute(f"VACUUM (ANALYZE) {names}")
    return True


def _layer(display: LayerDisplay, city: City | None, kind: str, geometry_type: str, attribution: str) -> Layer:
    """Create or update a layer, refusing to take over another city's layer of the same slug."""
    existing = Layer.objects.filter(slug=display.slug).select_related("city").first()
    if existing is not None and existing.city_id != (city.pk if city else None):
        owner = existing.city.slug if existing.city else "no city (a national layer)"
        raise InvalidInput(f"layer {display.slug!r} already belongs to {owner}; give this city's layer another slug")
    fields = display.model_dump(include=set(LayerSpec.model_fields) - {"attribution", "kind", "geometry_type"})
    spec = LayerSpec(**fields, kind=kind, geometry_type=geometry_type, attribution=display.attribution or attribution)
    return ensure_layer(spec, city)


def _admin_rows(path: Path, fields: AdminFields, level: int, parent: str | None = None) -> list[AdminAreaRow]:
    rows = []
    for record in read_records(path):
        props = record.properties
        code = props.get(fields.code)
        if code in (None, ""):
            raise InvalidInput(f"{path.name}, feature {record.row}: no {fields.code!r} property (the unit code)")
        if record.geom is None or record.geom.geom_type not in {"Polygon", "MultiPolygon"}:
            raise InvalidInput(f"{path.name}, feature {record.row}: an administrative area needs a polygon")
        name = str(props.get(fields.name) or props.get(fields.full_name) or code)
        area = props.get(fields.area_km2)
        rows.append(AdminAreaRow(
            level=level, code=str(code), name_vi=name, geom=record.geom, name_en=str(props.get(fields.name_en) or ""),
            full_name_vi=str(props.get(fields.full_name) or ""), full_name_en=str(props.get(fields.full_name_en) or ""),
            area_km2=float(area) if isinstance(area, (int, float)) else None,
            parent_code=str(props.get(fields.parent_code) or parent) if parent else None, row=record.row))
    return rows


def _agency_rows(cfg: CityConfig, province: AdminArea, wards: list[AdminAreaRow]) -> list[AgencyRow]:
    areas = {a.code: a for a in AdminArea.objects.filter(level__in=[AdminLevel.PROVINCE, AdminLevel.WARD])
             .order_by("-level")}  # ward codes win over a province with the same code
    rows = []
    for agency in cfg.agencies:
        jurisdiction = []
        for code in agency.jurisdiction:
            area = province if code == "province" else areas.get(code)
            if area is None:
                raise InvalidInput(f"agency {agency.code}: jurisdiction {code!r} is not a loaded area")
            jurisdiction.append(area)
        rows.append(AgencyRow(code=agency.code, name_vi=agency.name_vi, name_en=agency.name_en,
                              categories=agency.categories, jurisdiction=jurisdiction,
                              contact=agency.contact.model_dump(exclude_none=True)))
    template = cfg.ward_agency
    if template is None:
        return rows
    ward_areas = {a.code: a for a in AdminArea.objects.filter(level=AdminLevel.WARD, code__in=[w.code for w in wards])}
    for ward in wards:
        names = {"code": ward.code, "name": ward.name_vi, "name_en": ward.name_en,
                 "full_name": ward.full_name_vi or ward.name_vi, "full_name_en": ward.full_name_en or ward.name_en}
        try:
            rows.append(AgencyRow(code=template.code.format(**names), name_vi=template.name_vi.format(**names),
                                  name_en=template.name_en.format(**names), categories=template.categories,
                                  jurisdiction=[ward_areas[ward.code]],
                                  contact=template.contact.model_dump(exclude_none=True)))
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInput(f"ward_agency template: {exc!r}; use {{{'}, {'.join(names)}}}") from None
    return rows


def _osm_geometry_type(layer: OsmLayerConfig) -> str:
    if layer.extract in _OSM_GEOMETRY:
        return _OSM_GEOMETRY[layer.extract]
    return "Point" if layer.geometry == "point" else "Geometry"


def _load_osm(cfg: CityConfig, city: City, report: CityLoadReport, progress: bool) -> None:
    osm = read_osm(cfg.osm, progress=progress)
    if osm.broken_geometries:
        report.messages.append(f"{osm.broken_geometries} OSM object(s) without a buildable geometry skipped")
    extent = shapely.from_wkb(bytes(city.extent.wkb))
    for result in osm.layers:
        layer_cfg = result.config
        kind = {"buildings": "building", "roads": "road"}.get(layer_cfg.extract, layer_cfg.extract)
        layer = _layer(layer_cfg, city, kind, _osm_geometry_type(layer_cfg), cfg.osm.attribution)
        rows, outside = _inside(result.rows, extent)
        if outside:
            result.notes.append(f"{outside} feature(s) outside the city extent skipped")
        written = write_features(layer, rows, replace=True, progress=progress)
        report.layers.append(LoadedLayer(layer.slug, written, result.notes))


def _inside(rows: list[FeatureRow], extent: shapely.Geometry) -> tuple[list[FeatureRow], int]:
    """Keep the rows inside the extent: an OSM extract is often cut wider than the city."""
    if not rows:
        return rows, 0
    shapely.prepare(extent)
    inside = shapely.covered_by(np.asarray([r.geom for r in rows], dtype=object), extent)
    return [r for r, keep in zip(rows, inside) if keep], int((~inside).sum())


def _drop_stale_layers(city: City, previous: list[str], current: list[str]) -> list[str]:
    """Delete this city's layers that an earlier load created and the config no longer lists."""
    messages = []
    for layer in Layer.objects.filter(city=city, slug__in=set(previous) - set(current)):
        count, _ = Feature.objects.filter(layer=layer).delete()
        layer.delete()
        messages.append(f"layer {layer.slug} is no longer configured: removed with its {count} feature(s)")
    return messages


def _fingerprints(paths: list[Path]) -> dict[str, dict]:
    prints = {}
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        prints[path.name] = {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}
    return prints
