# SPDX-License-Identifier: AGPL-3.0-or-later
"""Load a city's cameras from a TOML file: the camera layer and its field-of-view layer.

Cities are data: ``fixtures/cameras/<city>.toml`` lists the cameras of one
city (position, mast height, heading, angle, range, stream, analytics
configuration). Loading validates every camera (its kind and its
:class:`~cameras.config.CameraConfig`), then writes both layers through
``twin.services.write_features`` (nothing is written if any camera is bad).
Loading again updates in place.
"""
from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from shapely.geometry import Point

from cameras.config import CameraConfig
from cameras.geometry import fov_polygon, geodesic_area_m2
from cameras.kinds import FOV_KIND
from twin.errors import InvalidInput
from twin.models import City
from twin.services import FeatureRow, LayerSpec, ensure_layer, write_features

logger = logging.getLogger(__name__)


class CameraEntry(BaseModel):
    """One camera in the fixture file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="External id (also its MQTT id).")
    name: str = Field(min_length=1)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    heading_deg: float
    fov_deg: float
    range_m: float
    mast_height_m: float | None = None
    stream_url: str | None = None
    vendor: str | None = None
    analytics: list[str] = Field(default_factory=list)
    road: str | None = Field(default=None, description="The road it watches (documentation).")
    config: dict[str, Any] = Field(default_factory=dict)


class CamerasFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    city: str = Field(min_length=1, description="Slug of the city the cameras belong to.")
    attribution: str = ""
    layer: LayerSpec
    fov_layer: LayerSpec
    cameras: list[CameraEntry] = Field(min_length=1)


def default_cameras_file() -> Path:
    return Path(settings.BASE_DIR) / "fixtures" / "cameras" / f"{settings.DEFAULT_CITY}.toml"


def shared_data_dir() -> Path:
    """Where the shared open data (videos) live: ``CITYTWIN_SHARED_DATA`` or ``../shared/data``."""
    return Path(os.environ.get("CITYTWIN_SHARED_DATA") or Path(settings.BASE_DIR).parent / "shared" / "data")


def read_cameras_file(path: Path | str) -> CamerasFile:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        parsed = CamerasFile.model_validate(data)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"cannot read cameras file {path}: {exc}") from None
    except ValidationError as exc:
        raise InvalidInput(f"invalid cameras file {path}: {exc}") from None
    problems = []
    for cam in parsed.cameras:
        try:
            CameraConfig.model_validate(cam.config)
        except ValidationError as exc:
            problems.append(f"camera {cam.id}: {exc}")
    if problems:
        raise InvalidInput("; ".join(problems), problems=problems)
    return parsed


def _stream(url: str | None) -> str | None:
    # ``{shared_data}`` keeps machine paths out of the fixture.
    return url.replace("{shared_data}", str(shared_data_dir())) if url else url


def camera_rows(parsed: CamerasFile) -> tuple[list[FeatureRow], list[FeatureRow]]:
    """(camera rows, field-of-view rows) for :func:`write_features`."""
    cameras, fovs = [], []
    for index, cam in enumerate(parsed.cameras, start=1):
        props = {"heading_deg": cam.heading_deg, "fov_deg": cam.fov_deg, "range_m": cam.range_m,
                 "stream_url": _stream(cam.stream_url), "vendor": cam.vendor, "analytics": cam.analytics,
                 "mast_height_m": cam.mast_height_m, "config": cam.config or None}
        cameras.append(FeatureRow(external_id=cam.id, name=cam.name, geom=Point(cam.lon, cam.lat), row=index,
                                  properties={k: v for k, v in props.items() if v is not None},
                                  height_m=cam.mast_height_m))
        fov = fov_polygon(cam.lon, cam.lat, heading_deg=cam.heading_deg, fov_deg=cam.fov_deg, range_m=cam.range_m)
        fovs.append(FeatureRow(external_id=cam.id, name=cam.name, geom=fov, row=index, properties={
            "camera": cam.id, "camera_layer": parsed.layer.slug, "heading_deg": cam.heading_deg,
            "fov_deg": cam.fov_deg, "range_m": cam.range_m, "area_m2": round(geodesic_area_m2(fov), 1)}))
    return cameras, fovs


def load_cameras(path: Path | str | None = None) -> dict[str, str]:
    """Create/update the camera layer and its field-of-view layer; returns a summary per layer."""
    parsed = read_cameras_file(path or default_cameras_file())
    city = City.objects.filter(slug=parsed.city).first()
    if city is None:
        raise InvalidInput(f"unknown city {parsed.city!r}: run `twin load-city` first")
    if parsed.layer.kind != "camera" or parsed.fov_layer.kind != FOV_KIND:
        raise InvalidInput(f"layer kinds must be 'camera' and '{FOV_KIND}'")
    cameras, fovs = camera_rows(parsed)
    with transaction.atomic():
        layer = ensure_layer(parsed.layer, city)
        fov_layer = ensure_layer(parsed.fov_layer, city)
        reports = [write_features(layer, cameras, replace=True), write_features(fov_layer, fovs, replace=True)]
    return {r.layer: r.summary() for r in reports}


__all__ = ["CameraEntry", "CamerasFile", "camera_rows", "default_cameras_file", "load_cameras",
           "read_cameras_file", "shared_data_dir"]
