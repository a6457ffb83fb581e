# SPDX-License-Identifier: AGPL-3.0-or-later
"""Saved views of the video wall (``/map/wall/``): what each screen cycles through, as data.

Why on the server: a wall is many screens run by no one at a keyboard; the
views an operations centre agrees on (the citadel, the river, the flood-prone
wards) must survive a browser being replaced, and an administrator edits them
in the admin instead of retyping URLs on every screen. ``?view=`` in the URL
still overrides them per screen.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

MIN_DWELL_S, MAX_DWELL_S = 2, 3600


class WallView(models.Model):
    """One view of a city's wall: where the camera looks, which layers are on and for how long."""

    city = models.ForeignKey("twin.City", on_delete=models.CASCADE, related_name="wall_views")
    name_vi = models.CharField("tên / name (vi)", max_length=100)
    name_en = models.CharField("name (en)", max_length=100, blank=True)
    longitude = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)],
                                  help_text="Centre, WGS 84 degrees")
    latitude = models.FloatField(validators=[MinValueValidator(-85), MaxValueValidator(85)],
                                 help_text="Centre, WGS 84 degrees")
    zoom = models.FloatField(default=15, validators=[MinValueValidator(0), MaxValueValidator(22)])
    pitch = models.FloatField(default=50, validators=[MinValueValidator(0), MaxValueValidator(70)],
                              help_text="Tilt in degrees (0 = straight down; the map allows 70)")
    bearing = models.FloatField(default=0, validators=[MinValueValidator(-180), MaxValueValidator(360)],
                                help_text="Rotation in degrees, clockwise from north")
    layers = models.JSONField(default=list, blank=True,
                              help_text="Slugs of the layers switched on in this view; empty keeps the page's own")
    dwell_s = models.PositiveIntegerField("dwell (s)", default=20,
                                          validators=[MinValueValidator(MIN_DWELL_S), MaxValueValidator(MAX_DWELL_S)],
                                          help_text="How long the wall stays on this view")
    order = models.IntegerField(default=0, help_text="Views are shown by increasing order")

    class Meta:
        ordering = ("city", "order", "id")
        constraints = [models.UniqueConstraint(fields=("city", "name_vi"), name="map_ui_wallview_unique_name")]
        verbose_name = "góc nhìn màn hình tường / wall view"
        verbose_name_plural = "góc nhìn màn hình tường / wall views"

    def clean(self) -> None:
        """The admin form's check: ``layers`` is a list of existing layer slugs."""
        from twin.models import Layer

        if not isinstance(self.layers, list) or not all(isinstance(s, str) for s in self.layers):
            raise ValidationError({"layers": "a list of layer slugs, e.g. [\"hue-buildings\", \"hue-roads\"]"})
        known = set(Layer.objects.filter(slug__in=self.layers).values_list("slug", flat=True))
        unknown = sorted(set(self.layers) - known)
        if unknown:
            raise ValidationError({"layers": f"unknown layer(s): {', '.join(unknown)}"})

    def __str__(self) -> str:
        return f"{self.city_id}: {self.name_vi}"
