# SPDX-License-Identifier: AGPL-3.0-or-later
"""The ``camera_fov`` feature kind: a camera's field of view on the ground.

The field of view is a layer of its own (``<city>-camera-fov``) so that the
map draws it through the layers API like any polygon layer, without map
code. Each polygon is derived from its camera (position, heading, angle,
range) by :func:`cameras.geometry.fov_polygon` whenever cameras are loaded.
"""
from __future__ import annotations

from pydantic import Field

from twin import kinds

FOV_KIND = "camera_fov"


class CameraFovProps(kinds.Props):
    camera: str = Field(min_length=1, title="External id of the camera this field of view belongs to")
    camera_layer: str = Field(min_length=1, title="Slug of the camera's layer")
    heading_deg: float = Field(ge=0, lt=360)
    fov_deg: float = Field(gt=0, le=360)
    range_m: float = Field(gt=0, le=5000)
    area_m2: float = Field(ge=0, title="Ground area seen, m² (geodesic)")


def register_camera_kinds() -> None:
    kinds.register(kinds.FeatureKind(FOV_KIND, "Vùng quan sát camera", "Camera field of view", kinds.AREA,
                                     CameraFovProps))
    from layers import registry

    registry.register(registry.LayerKindSpec(
        FOV_KIND, default_style={"type": "fill", "fill": "#1565c0", "fill_opacity": 0.18, "stroke": "#1565c0"}))
