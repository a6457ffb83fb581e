# SPDX-License-Identifier: AGPL-3.0-or-later
"""Administrative areas (province → ward) and the agencies responsible for them."""
from __future__ import annotations

from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.db.models import Q


class AdminLevel(models.IntegerChoices):
    """Levels of Vietnamese administration (since 1 July 2025 there are no districts)."""

    COUNTRY = 0, "Quốc gia / Country"
    PROVINCE = 1, "Tỉnh, thành phố / Province"
    DISTRICT = 2, "Quận, huyện / District"
    WARD = 3, "Phường, xã / Ward or commune"


class AdminArea(models.Model):
    level = models.PositiveSmallIntegerField(choices=AdminLevel.choices)
    code = models.CharField(max_length=20, help_text="Official unit code (e.g. 46 for Huế, 19753 for Phú Xuân).")
    name_vi = models.CharField(max_length=200)
    name_en = models.CharField(max_length=200, blank=True)
    full_name_vi = models.CharField(max_length=250, blank=True)
    full_name_en = models.CharField(max_length=250, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    geom = models.MultiPolygonField(srid=4326)
    area_km2 = models.FloatField(null=True, blank=True)
    feature = models.OneToOneField(
        "twin.Feature", null=True, blank=True, on_delete=models.SET_NULL, related_name="admin_area",
        help_text="The map feature drawing this area.",
    )

    class Meta:
        ordering = ["level", "code"]
        constraints = [
            models.UniqueConstraint(fields=["level", "code"], name="admin_area_code_unique_per_level"),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="admin_area_geom_valid"),
        ]

    def __str__(self) -> str:
        return self.full_name_vi or self.name_vi


class Agency(models.Model):
    """A body that handles events and reports in some areas for some categories.

    ``categories`` holds the event/report categories it handles; ``*`` means
    it is the default handler for its areas (for instance a ward's People's
    Committee), used when no specialised agency matches.
    """

    code = models.CharField(max_length=50, unique=True)
    name_vi = models.CharField(max_length=250)
    name_en = models.CharField(max_length=250, blank=True)
    jurisdiction = models.ManyToManyField(AdminArea, related_name="agencies", blank=True)
    categories = ArrayField(models.CharField(max_length=60), default=list, blank=True)
    contact = models.JSONField(default=dict, blank=True, help_text="phone, hotline, email, address")
    location = models.PointField(srid=4326, null=True, blank=True)
    feature = models.OneToOneField(
        "twin.Feature", null=True, blank=True, on_delete=models.SET_NULL, related_name="agency"
    )

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "agencies"

    def __str__(self) -> str:
        return self.name_vi
