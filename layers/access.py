# SPDX-License-Identifier: AGPL-3.0-or-later
"""Who may read which layer.

A public layer is readable by anyone; any other layer needs the
``read_private_layers`` capability. A layer the caller may not read answers
exactly like a layer that does not exist (404), so private layer names
cannot be probed.
"""
from __future__ import annotations

from django.db.models import QuerySet

from twin.errors import NotFound
from twin.models import Layer
from twin.roles import Capability, has_capability


def readable_layers(user) -> QuerySet[Layer]:
    layers = Layer.objects.all()
    if not has_capability(user, Capability.READ_PRIVATE_LAYERS):
        layers = layers.filter(is_public=True)
    return layers


def readable_layer(user, slug: str) -> Layer:
    """The layer ``slug`` if ``user`` may read it, else :class:`NotFound`."""
    layer = readable_layers(user).select_related("city").filter(slug=slug).first()
    if layer is None:
        raise NotFound(f"no collection {slug!r}")
    return layer
