# SPDX-License-Identifier: AGPL-3.0-or-later
"""Cities, layers and the one feature table every thing on the map lives in."""
from __future__ import annotations

from datetime import datetime

from django.contrib.gis.db import models
from django.core.validators import RegexValidator
from django.db.models import Q

# Ids the layers API reserves for its own routes (OGC API Features / TileJSON).
RESERVED_LAYER_SLUGS = frozenset({"collections", "tiles", "health", "conformance", "api", "items", "static"})

slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{0,62}$",
    "Slug: lower-case letters, digits and dashes, starting with a letter or digit (max 63).",
)


class GeometryType(models.TextChoices):
    POINT = "Point"
    LINESTRING = "LineString"
    POLYGON = "Polygon"
    MULTIPOINT = "MultiPoint"
    MULTILINESTRING = "MultiLineString"
    MULTIPOLYGON = "MultiPolygon"
    ANY = "Geometry"


class FeatureStatus(models.TextChoices):
    ACTIVE = "active", "Hoạt động / Active"
    INACTIVE = "inactive", "Ngừng hoạt động / Inactive"
    OFFLINE = "offline", "Mất kết nối / Offline"
    DEGRADED = "degraded", "Suy giảm / Degraded"  # reporting, but not fully working (a stalling camera stream)
    MAINTENANCE = "maintenance", "Bảo trì / Maintenance"
    RETIRED = "retired", "Đã loại bỏ / Retired"


class City(models.Model):
    """A city or province the twin covers, loaded from its own files.

    The extent bounds every write: imports and devices reporting outside it
    are rejected, so a swapped lon/lat or a wrong CRS never lands silently.
    """

    slug = models.CharField(max_length=63, unique=True, validators=[slug_validator])
    name_vi = models.CharField(max_length=200)
    name_en = models.CharField(max_length=200, blank=True)
    province = models.ForeignKey(
        "twin.AdminArea", null=True, blank=True, on_delete=models.SET_NULL, related_name="cities"
    )
    extent = models.PolygonField(srid=4326, help_text="Bounding area accepted for this city's features.")
    center = models.PointField(srid=4326, null=True, blank=True)
    default_zoom = models.FloatField(default=12)
    attribution = models.TextField(blank=True)
    sources = models.JSONField(default=dict, blank=True, help_text="Files the city was loaded from.")
    loaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "city / thành phố"
        verbose_name_plural = "cities / thành phố"

    def __str__(self) -> str:
        return self.name_vi


class Layer(models.Model):
    """A set of features of one kind, served and styled together."""

    slug = models.CharField(max_length=63, unique=True, validators=[slug_validator])
    title_vi = models.CharField(max_length=200)
    title_en = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=40, help_text="A feature kind from twin.kinds (validates properties).")
    geometry_type = models.CharField(max_length=20, choices=GeometryType.choices, default=GeometryType.ANY)
    style = models.JSONField(default=dict, blank=True, help_text="Default map style (colours, radius, extrusion).")
    is_public = models.BooleanField(default=False, help_text="Readable without logging in.")
    attribution = models.TextField(blank=True)
    city = models.ForeignKey(City, null=True, blank=True, on_delete=models.PROTECT, related_name="layers")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(geometry_type__in=GeometryType.values), name="layer_geometry_type_known"
            ),
            models.CheckConstraint(condition=~Q(slug__in=sorted(RESERVED_LAYER_SLUGS)), name="layer_slug_not_reserved"),
        ]

    def __str__(self) -> str:
        return f"{self.slug} ({self.title_vi})"


class Feature(models.Model):
    """Anything on the map: a camera, a sensor, a report, a building, a road...

    Geometry is stored in EPSG:4326 and must be valid (a database constraint,
    not just a form check). Metric queries use the functional index on
    ``geom::geography`` created in the migration, never degrees.
    """

    layer = models.ForeignKey(Layer, on_delete=models.PROTECT, related_name="features")
    external_id = models.CharField(max_length=200, help_text="Id in the source system; unique per layer.")
    name = models.CharField(max_length=300, blank=True)
    geom = models.GeometryField(srid=4326)
    properties = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=FeatureStatus.choices, default=FeatureStatus.ACTIVE)
    height_m = models.FloatField(null=True, blank=True, help_text="Height in metres for 3D (buildings, masts).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["layer", "external_id"], name="feature_external_id_unique_per_layer"),
            models.CheckConstraint(condition=~Q(external_id=""), name="feature_external_id_not_empty"),
            models.CheckConstraint(condition=Q(status__in=FeatureStatus.values), name="feature_status_known"),
            models.CheckConstraint(
                condition=Q(height_m__isnull=True) | Q(height_m__gte=0, height_m__lte=1000),
                name="feature_height_in_range",
            ),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="feature_geom_valid"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id

    @property
    def last_seen(self) -> datetime | None:
        """When the device behind this feature last reported (``DeviceLiveness``); None if never."""
        try:
            return self.liveness.last_seen
        except DeviceLiveness.DoesNotExist:
            return None


class DeviceLiveness(models.Model):
    """When a device (a feature that reports: sensor, camera, boat) last reported.

    Why a table of its own: ingestion rewrites this every few seconds for
    every reporting device. Kept on ``twin_feature`` it made the feature table
    (large geometries, OSM tags, two GiST indexes) churn, so autovacuum
    re-analyzed it every minute — a second of CPU each time on Huế's 39,000
    features, which showed as the slowest fire-alarm latencies
    (``docs/benchmarks.md``, 25 Nov). Here a report rewrites a 40-byte row
    that nothing indexes but its key. SQL reads it through
    :func:`last_seen_sql`. A device's ``status`` stays
    on the feature: it changes rarely (offline, back, maintenance) and is an
    operator's field too.
    """

    # The database's own foreign key cascades (migration 0006): layer reloads delete features in SQL.
    feature = models.OneToOneField(Feature, primary_key=True, on_delete=models.CASCADE, related_name="liveness",
                                   db_constraint=False)
    last_seen = models.DateTimeField()

    class Meta:
        verbose_name_plural = "device liveness"

    def __str__(self) -> str:
        return f"{self.feature_id} seen {self.last_seen.isoformat()}"


def last_seen_sql(alias: str = "f") -> str:
    """SQL for the ``last_seen`` of the feature aliased ``alias`` (NULL if it never reported).

    One definition for every reader (API filters and output, exports, live
    push, offline timers): a correlated look-up by primary key, so a query
    keeps its ``FROM twin_feature f`` and filters and sorts on it like on a column.
    """
    return f"(SELECT dl.last_seen FROM twin_deviceliveness dl WHERE dl.feature_id = {alias}.id)"
