# SPDX-License-Identifier: AGPL-3.0-or-later
"""Geo-events: detections and alerts with a place, a severity and a lifecycle."""
from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q


class EventStatus(models.TextChoices):
    NEW = "new", "Mới / New"
    ACKNOWLEDGED = "acknowledged", "Đã tiếp nhận / Acknowledged"
    DISPATCHED = "dispatched", "Đã điều phối / Dispatched"
    RESOLVED = "resolved", "Đã xử lý / Resolved"
    DISMISSED = "dismissed", "Bỏ qua / Dismissed"


# The lifecycle: new → acknowledged → dispatched → resolved, and dismissed
# from any open state. Closed events stay closed; a recurrence is a new event.
# new → resolved exists for conditions that clear before anyone acknowledged
# them (a rule's auto-clear, signed "rule:<name>" in the history), so stale
# alarms do not pile up in the operators' queue.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    EventStatus.NEW: frozenset({EventStatus.ACKNOWLEDGED, EventStatus.DISPATCHED, EventStatus.RESOLVED,
                                EventStatus.DISMISSED}),
    EventStatus.ACKNOWLEDGED: frozenset({EventStatus.DISPATCHED, EventStatus.RESOLVED, EventStatus.DISMISSED}),
    EventStatus.DISPATCHED: frozenset({EventStatus.RESOLVED, EventStatus.DISMISSED}),
    EventStatus.RESOLVED: frozenset(),
    EventStatus.DISMISSED: frozenset(),
}


class EventSeverity(models.IntegerChoices):
    INFO = 1, "Thông tin / Info"
    MINOR = 2, "Thấp / Minor"
    MODERATE = 3, "Trung bình / Moderate"
    MAJOR = 4, "Cao / Major"
    CRITICAL = 5, "Khẩn cấp / Critical"


class GeoEvent(models.Model):
    kind = models.CharField(max_length=40, help_text="detection, alert, report, geofence ...")
    category = models.CharField(max_length=60, help_text="fire, flood, air_quality, traffic ...")
    severity = models.PositiveSmallIntegerField(choices=EventSeverity.choices, default=EventSeverity.MODERATE)
    title = models.CharField(max_length=300, blank=True)
    geom = models.GeometryField(srid=4326)
    source_feature = models.ForeignKey(
        "twin.Feature", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    layer = models.ForeignKey("twin.Layer", null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    source_key = models.CharField(
        max_length=200, null=True, blank=True, unique=True,
        help_text="Id given by the producer (adapter, rule), so a repeated message updates instead of duplicating.",
    )
    occurred_at = models.DateTimeField()
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=EventStatus.choices, default=EventStatus.NEW)
    ward = models.ForeignKey(
        "twin.AdminArea", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    agency = models.ForeignKey("twin.Agency", null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["status", "-occurred_at"], name="geoevent_status_time"),
            models.Index(fields=["agency", "status"], name="geoevent_agency_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=EventStatus.values), name="geoevent_status_known"),
            models.CheckConstraint(condition=Q(severity__gte=1, severity__lte=5), name="geoevent_severity_range"),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="geoevent_geom_valid"),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.category} #{self.pk}"


class GeoEventTransition(models.Model):
    """One step of an event's history: who changed what, and when."""

    event = models.ForeignKey(GeoEvent, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, help_text="Username or system component that acted.")
    note = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="Other fields changed in this step.")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event", "at", "id"]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.from_status or '∅'} → {self.to_status}"
