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


PIECE_MAX_VERTICES = 96


class AdminAreaPiece(models.Model):
    """A small piece of an area's outline (PostGIS ``ST_Subdivide``), for point-in-area look-ups.

    Why: a ward outline has ~3,000 vertices (~52 KB, stored out of line), so
    each ``ST_Covers`` of a point against a ward read and copied the whole
    outline back from TOAST — three times per candidate in the routing query.
    Pieces of at most ``PIECE_MAX_VERTICES`` vertices stay inline and the GiST
    index finds the one or two that matter: the routing candidates of 16
    points took 1.7 instead of 5.2 ms on Huế's 40 wards (24 Nov).

    Kept by a PostgreSQL trigger on ``twin_adminarea`` (migration
    ``twin.0005``), so every write path — the ORM, COPY, raw SQL — keeps the
    pieces right; nothing in Python writes them. The pieces of an area cover
    exactly the area: a point is covered by the area if and only if one of
    its pieces covers it, and its distance to the area is the least distance
    to a piece.
    """

    area = models.ForeignKey(AdminArea, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    level = models.PositiveSmallIntegerField(choices=AdminLevel.choices)
    geom = models.GeometryField(srid=4326)

    def __str__(self) -> str:
        return f"piece of area {self.area_id}"


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
