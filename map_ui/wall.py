# SPDX-License-Identifier: AGPL-3.0-or-later
"""Saved wall views: read for the wall page, loaded from a city's ``wall_views.toml``.

Cities are data: a city ships its default views next to its ``city.toml``
(``fixtures/cities/<slug>/wall_views.toml``); ``twin load-city`` loads them
when the file exists, and ``twin load-wall-views`` loads any file again.
Loading replaces the city's views by name (views an administrator added
under other names stay). Writes go through :func:`save_wall_views`, in one
transaction.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from map_ui.models import MAX_DWELL_S, MIN_DWELL_S, WallView
from twin.errors import InvalidInput, NotFound
from twin.models import City, Layer

FILE_NAME = "wall_views.toml"


class WallViewSpec(BaseModel):
    """One view as a data file states it (the model's fields, validated the same way)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name_vi: str = Field(min_length=1, max_length=100, description="Name shown on the wall (Vietnamese)")
    name_en: str = Field(default="", max_length=100, description="English name")
    center: tuple[float, float] = Field(description="[lon, lat], WGS 84 degrees")
    zoom: float = Field(default=15, ge=0, le=22, description="Zoom level")
    pitch: float = Field(default=50, ge=0, le=70, description="Tilt, degrees")
    bearing: float = Field(default=0, ge=-180, le=360, description="Rotation, degrees clockwise from north")
    layers: list[str] = Field(default_factory=list, max_length=100, description="Layer slugs switched on; empty "
                              "keeps the page's own")
    dwell_s: int = Field(default=20, ge=MIN_DWELL_S, le=MAX_DWELL_S, description="Seconds on this view")


class WallViewsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    views: list[WallViewSpec] = Field(min_length=1, max_length=200, description="The views, in wall order")


def read_views_file(path: Path) -> list[WallViewSpec]:
    try:
        return list(WallViewsFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8"))).views)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"{path}: {problems}") from None


def save_wall_views(city: City, specs: list[WallViewSpec]) -> int:
    """Create or update the city's views by name, in the file's order; returns how many."""
    named = {slug for spec in specs for slug in spec.layers}
    unknown = sorted(named - set(Layer.objects.filter(slug__in=named).values_list("slug", flat=True)))
    if unknown:
        raise InvalidInput(f"unknown layer(s) in wall views: {', '.join(unknown)}")
    if len({spec.name_vi for spec in specs}) != len(specs):
        raise InvalidInput("two wall views have the same name_vi")
    with transaction.atomic():
        for order, spec in enumerate(specs):
            WallView.objects.update_or_create(city=city, name_vi=spec.name_vi, defaults=dict(
                name_en=spec.name_en, longitude=spec.center[0], latitude=spec.center[1], zoom=spec.zoom,
                pitch=spec.pitch, bearing=spec.bearing, layers=list(spec.layers), dwell_s=spec.dwell_s,
                order=order * 10))
    return len(specs)


def load_city_views(city_slug: str, path: Path) -> int:
    city = City.objects.filter(slug=city_slug).first()
    if city is None:
        raise NotFound(f"no city {city_slug!r}; load it first (twin load-city)")
    return save_wall_views(city, read_views_file(path))


def view_document(view: WallView) -> dict[str, Any]:
    return {"id": view.pk, "name_vi": view.name_vi, "name_en": view.name_en or view.name_vi,
            "longitude": view.longitude, "latitude": view.latitude, "zoom": view.zoom, "pitch": view.pitch,
            "bearing": view.bearing, "layers": list(view.layers or []), "dwell_s": view.dwell_s, "order": view.order}


def city_views(city_slug: str) -> list[dict[str, Any]]:
    city = City.objects.filter(slug=city_slug).first()
    if city is None:
        raise NotFound(f"no city {city_slug!r}")
    return [view_document(v) for v in city.wall_views.all()]
