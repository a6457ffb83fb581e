# SPDX-License-Identifier: AGPL-3.0-or-later
"""Create or update layers from a typed spec (city configs, imports)."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field

from twin.errors import InvalidInput
from twin.kinds import KindError, get_kind
from twin.models import City, GeometryType, Layer
from twin.models.features import RESERVED_LAYER_SLUGS


class LayerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="URL id of the layer")
    title_vi: str = Field(min_length=1, description="Vietnamese title (shown first)")
    title_en: str = Field(default="", description="English title")
    kind: str = Field(description="Feature kind from twin.kinds")
    geometry_type: str = Field(default="Geometry", description="Point, LineString, Polygon, Multi..., or Geometry")
    style: dict[str, Any] = Field(default_factory=dict, description="Default map style")
    is_public: bool = Field(default=False, description="Readable without login")
    attribution: str = Field(default="", description="Data attribution shown on the map and in exports")
    description: str = Field(default="", description="What the layer holds")


def ensure_layer(spec: LayerSpec, city: City | None = None) -> Layer:
    """Create the layer or update its metadata; its features are untouched."""
    if spec.slug in RESERVED_LAYER_SLUGS:
        raise InvalidInput(f"layer id {spec.slug!r} is reserved")
    if spec.geometry_type not in GeometryType.values:
        raise InvalidInput(f"unknown geometry type {spec.geometry_type!r}")
    try:
        get_kind(spec.kind)
    except KindError as exc:
        raise InvalidInput(str(exc)) from None
    with transaction.atomic():
        layer, _ = Layer.objects.update_or_create(
            slug=spec.slug, defaults={**spec.model_dump(exclude={"slug"}), "city": city}
        )
    return layer
