# SPDX-License-Identifier: AGPL-3.0-or-later
"""The registry of feature kinds: what a layer's features may hold.

Each kind names the geometry types it accepts and a pydantic model that
validates ``Feature.properties``. Kinds plug in through :func:`register`
(wired in ``TwinConfig.ready``); tests swap them with :func:`registered`.

>>> get_kind("camera").validate({"heading_deg": 90, "fov_deg": 60, "range_m": 80})["heading_deg"]
90.0
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class KindError(ValueError):
    """Properties or geometry do not fit the layer's kind."""


class Props(BaseModel):
    """Base for property models: unknown keys are refused, not silently kept."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OpenProps(BaseModel):
    """Base for kinds whose sources carry open-ended tags (OSM, imports)."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


class CameraProps(Props):
    heading_deg: float = Field(ge=0, lt=360, title="Compass heading of the optical axis, degrees from north")
    fov_deg: float = Field(gt=0, le=360, title="Horizontal field-of-view angle, degrees")
    range_m: float = Field(gt=0, le=5000, title="Useful viewing distance, metres")
    stream_url: str | None = Field(default=None, title="RTSP/HTTP(S) stream address")
    tilt_deg: float | None = Field(default=None, ge=-90, le=90)
    vendor: str | None = None
    analytics: list[str] = Field(default_factory=list, title="Enabled analytics (vehicle_count, crowd, fire ...)")
    mast_height_m: float | None = Field(default=None, gt=0, le=200, title="Height of the lens above the ground, m")
    config: dict[str, Any] | None = Field(
        default=None, title="Analytics configuration (zones, counting lines, lanes, calibration)",
        description="Validated by cameras.config.CameraConfig when cameras are loaded and when the worker starts.")

    @field_validator("stream_url")
    @classmethod
    def _stream_scheme(cls, value: str | None) -> str | None:
        if value and not value.split("://", 1)[0] in {"rtsp", "rtsps", "http", "https", "file"}:
            raise ValueError("stream_url must be rtsp://, rtsps://, http(s):// or file://")
        return value


SensorType = Literal[
    "air_quality", "water_level", "fire_alarm", "smoke", "temperature", "humidity",
    "rainfall", "noise", "wind", "traffic_counter", "energy", "other",
]


class SensorProps(Props):
    sensor_type: SensorType
    unit: str = Field(min_length=1, max_length=20, title="Unit of the main reading (µg/m³, cm, °C ...)")
    measures: list[str] = Field(default_factory=list, title="Quantities reported (pm25, pm10, level ...)")
    thresholds: dict[str, float] = Field(default_factory=dict, title="Named alert thresholds")
    vendor: str | None = None


class CitizenReportProps(Props):
    """Public part of a citizen report. The reporter's identity is never here."""

    category: str = Field(min_length=1, max_length=60)
    description: str = Field(default="", max_length=5000)
    channel: Literal["app", "web", "hotline", "zalo", "sms", "email", "walk_in", "import"] = "app"
    report_status: Literal["received", "verified", "assigned", "in_progress", "resolved", "rejected"] = "received"
    reported_at: datetime | None = None
    due_at: datetime | None = None
    address: str | None = Field(default=None, max_length=500)
    photos: list[str] = Field(default_factory=list)
    # Written by reports.services (issue 7): the public outcome, never the reporter.
    category_name: str | None = Field(default=None, max_length=200, title="Category name (Vietnamese)")
    ward: str | None = Field(default=None, max_length=20, title="Official code of the ward")
    ward_name: str | None = Field(default=None, max_length=200)
    agency: str | None = Field(default=None, max_length=50, title="Code of the responsible agency")
    agency_name: str | None = Field(default=None, max_length=250)
    result: str | None = Field(default=None, max_length=5000, title="What the agency did, or why it was rejected")
    closed_at: datetime | None = None
    overdue: bool = False


class TouristSiteProps(OpenProps):
    site_type: Literal["heritage", "attraction", "museum", "monument", "viewpoint", "park", "other"] = "attraction"
    name_en: str | None = None
    unesco: bool = False
    capacity: int | None = Field(default=None, ge=0)
    opening_hours: str | None = None


class BoatProps(Props):
    mmsi: str = Field(pattern=r"^\d{9}$", title="Maritime Mobile Service Identity, nine digits")
    registration_number: str | None = Field(default=None, max_length=40, title="e.g. TTH-90123-TS")
    length_m: float | None = Field(default=None, gt=0, le=500)
    width_m: float | None = Field(default=None, gt=0, le=100)
    vessel_type: str | None = None
    call_sign: str | None = None
    imo: str | None = None


class BuildingProps(OpenProps):
    building: str = "yes"
    levels: float | None = Field(default=None, ge=0, le=200)
    height_source: Literal["height_tag", "levels", "default", "survey"] = "default"


class RoadProps(OpenProps):
    """A routable road edge between two network nodes (OSM node ids)."""

    highway: str
    source: int = Field(title="Start node id")
    target: int = Field(title="End node id")
    oneway: Literal[-1, 0, 1] = 0
    length_m: float = Field(ge=0)
    osm_way_id: int | None = None
    maxspeed_kmh: float | None = Field(default=None, gt=0, le=200)
    lanes: int | None = Field(default=None, ge=1, le=20)


PoiType = Literal[
    "hospital", "clinic", "fire_station", "police", "fire_hydrant", "hotel", "school",
    "shelter", "pharmacy", "government", "other",
]


class PoiProps(OpenProps):
    poi_type: PoiType
    phone: str | None = None
    address: str | None = None


class AdminAreaProps(Props):
    code: str
    level: int = Field(ge=0, le=3)
    name_en: str | None = None
    full_name: str | None = None
    full_name_en: str | None = None
    area_km2: float | None = None
    parent_code: str | None = None


class AgencyProps(Props):
    code: str
    categories: list[str] = Field(default_factory=list)
    phone: str | None = None
    address: str | None = None


class WaterProps(OpenProps):
    waterway: str | None = None
    water: str | None = None


class GenericProps(OpenProps):
    """For imported layers whose attributes are not known in advance."""


POINT, LINE, AREA = frozenset({"Point", "MultiPoint"}), frozenset({"LineString", "MultiLineString"}), frozenset(
    {"Polygon", "MultiPolygon"}
)
ANY_GEOMETRY = POINT | LINE | AREA | {"GeometryCollection"}


@dataclass(frozen=True, slots=True)
class FeatureKind:
    name: str
    title_vi: str
    title_en: str
    geometry_types: frozenset[str]
    properties_model: type[BaseModel]

    def validate(self, properties: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return cleaned properties (JSON-ready) or raise :class:`KindError`."""
        try:
            model = self.properties_model.model_validate(dict(properties or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'properties'}: {err['msg']}" for err in exc.errors()
            )
            raise KindError(f"invalid {self.name} properties: {problems}") from None
        return model.model_dump(mode="json", exclude_none=True)

    def check_geometry_type(self, geom_type: str) -> None:
        if geom_type not in self.geometry_types:
            allowed = ", ".join(sorted(self.geometry_types))
            raise KindError(f"a {self.name} cannot have a {geom_type} geometry (allowed: {allowed})")


_KINDS: dict[str, FeatureKind] = {}

BUILTIN_KINDS = (
    FeatureKind("camera", "Camera", "Camera", POINT, CameraProps),
    FeatureKind("sensor", "Cảm biến IoT", "IoT sensor", POINT, SensorProps),
    FeatureKind("citizen_report", "Phản ánh hiện trường", "Citizen report", POINT, CitizenReportProps),
    FeatureKind("tourist_site", "Điểm du lịch", "Tourist site", POINT | AREA, TouristSiteProps),
    FeatureKind("boat", "Tàu thuyền", "Boat", POINT, BoatProps),
    FeatureKind("building", "Công trình", "Building", AREA, BuildingProps),
    FeatureKind("road", "Đường giao thông", "Road", LINE, RoadProps),
    FeatureKind("poi", "Điểm quan tâm", "Point of interest", POINT | AREA, PoiProps),
    FeatureKind("admin_area", "Đơn vị hành chính", "Administrative area", AREA, AdminAreaProps),
    FeatureKind("agency", "Cơ quan", "Agency", POINT | AREA, AgencyProps),
    FeatureKind("water", "Sông, hồ", "Water body", LINE | AREA, WaterProps),
    FeatureKind("generic", "Lớp dữ liệu chung", "Generic layer", ANY_GEOMETRY, GenericProps),
)


def register(kind: FeatureKind) -> None:
    _KINDS[kind.name] = kind


def register_builtin_kinds() -> None:
    for kind in BUILTIN_KINDS:
        register(kind)


def get_kind(name: str) -> FeatureKind:
    if not _KINDS:
        register_builtin_kinds()
    try:
        return _KINDS[name]
    except KeyError:
        raise KindError(f"unknown feature kind {name!r}; known: {', '.join(sorted(_KINDS))}") from None


def all_kinds() -> list[FeatureKind]:
    if not _KINDS:
        register_builtin_kinds()
    return sorted(_KINDS.values(), key=lambda k: k.name)


@contextlib.contextmanager
def registered(kind: FeatureKind) -> Iterator[FeatureKind]:
    """Register ``kind`` for the duration of a block (tests, plugins)."""
    previous = _KINDS.get(kind.name)
    register(kind)
    try:
        yield kind
    finally:
        if previous is None:
            _KINDS.pop(kind.name, None)
        else:
            _KINDS[kind.name] = previous
