# SPDX-License-Identifier: AGPL-3.0-or-later
"""Citizen reports: the public report, the reporter kept apart, the workflow history.

A report is public (its feature in the city's reports layer, its geo-event,
the Open311 API, the results page). The reporter's identity lives only in
:class:`Reporter`, which no public serializer reads: public code selects
``Report`` columns, never ``reporter__*``.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q


class ReportStatus(models.TextChoices):
    RECEIVED = "received", "Đã tiếp nhận / Received"
    VERIFIED = "verified", "Đã xác minh / Verified"
    ASSIGNED = "assigned", "Đã chuyển xử lý / Assigned"
    IN_PROGRESS = "in_progress", "Đang xử lý / In progress"
    RESOLVED = "resolved", "Đã xử lý xong / Resolved"
    REJECTED = "rejected", "Từ chối / Rejected"


OPEN_STATUSES = frozenset({ReportStatus.RECEIVED, ReportStatus.VERIFIED, ReportStatus.ASSIGNED,
                           ReportStatus.IN_PROGRESS})
CLOSED_STATUSES = frozenset({ReportStatus.RESOLVED, ReportStatus.REJECTED})

# The workflow. Rejection is possible from any open state (a duplicate, not
# the city's business, a false report); resolved and rejected are final.
REPORT_TRANSITIONS: dict[str, frozenset[str]] = {
    ReportStatus.RECEIVED: frozenset({ReportStatus.VERIFIED, ReportStatus.REJECTED}),
    ReportStatus.VERIFIED: frozenset({ReportStatus.ASSIGNED, ReportStatus.REJECTED}),
    ReportStatus.ASSIGNED: frozenset({ReportStatus.IN_PROGRESS, ReportStatus.RESOLVED, ReportStatus.REJECTED}),
    ReportStatus.IN_PROGRESS: frozenset({ReportStatus.RESOLVED, ReportStatus.REJECTED}),
    ReportStatus.RESOLVED: frozenset(),
    ReportStatus.REJECTED: frozenset(),
}


class Channel(models.TextChoices):
    WEB = "web", "Trang web / Web form"
    APP = "app", "Ứng dụng / App (Open311)"
    HOTLINE = "hotline", "Đường dây nóng 1022 / Hotline"
    IMPORT = "import", "Nhập dữ liệu / Import"


class ContactChannel(models.TextChoices):
    NONE = "none", "Không nhận thông báo / No notifications"
    EMAIL = "email", "Email"
    SMS = "sms", "Tin nhắn / SMS"


class ReportCategory(models.Model):
    """A kind of problem, loaded from ``fixtures/reports/report_categories.toml``."""

    code = models.CharField(max_length=60, unique=True)
    name_vi = models.CharField(max_length=200)
    name_en = models.CharField(max_length=200)
    deadline_hours = models.PositiveIntegerField()
    route_as = models.CharField(max_length=60, help_text="Agency category the routing chain looks for.")
    group = models.CharField(max_length=60, blank=True)
    keywords = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "report categories"

    def __str__(self) -> str:
        return self.name_vi


class Report(models.Model):
    """The public report. Nothing here identifies the reporter."""

    city = models.ForeignKey("twin.City", on_delete=models.PROTECT, related_name="reports")
    category = models.ForeignKey(ReportCategory, on_delete=models.PROTECT, related_name="reports")
    token = models.UUIDField(default=uuid.uuid4, unique=True, help_text="Open311 token, given at filing.")
    geom = models.PointField(srid=4326)
    description = models.TextField(blank=True)
    address = models.CharField(max_length=500, blank=True)
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.WEB)
    status = models.CharField(max_length=20, choices=ReportStatus.choices, default=ReportStatus.RECEIVED)
    ward = models.ForeignKey("twin.AdminArea", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    agency = models.ForeignKey("twin.Agency", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="reports")
    routing = models.JSONField(default=dict, blank=True, help_text="Why this agency (ingestion.routing record).")
    feature = models.OneToOneField("twin.Feature", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="report")
    event = models.OneToOneField("twin.GeoEvent", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="report")
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="duplicates")
    result_text = models.TextField(blank=True)
    reject_reason = models.TextField(blank=True)
    reported_at = models.DateTimeField()
    due_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    overdue_at = models.DateTimeField(null=True, blank=True, help_text="When the overdue check flagged it.")
    source_ref = models.CharField(max_length=100, null=True, blank=True, unique=True,
                                  help_text="Id in an imported stream (e.g. sf311:1757188), so a re-load updates.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-reported_at", "-id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="report_status_due"),
            models.Index(fields=["agency", "status"], name="report_agency_status"),
            models.Index(fields=["category", "status"], name="report_category_status"),
            models.Index(fields=["ward", "reported_at"], name="report_ward_time"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ReportStatus.values), name="report_status_known"),
            models.CheckConstraint(condition=Q(due_at__gte=models.F("reported_at")), name="report_due_after_filing"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.category_id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Reporter(models.Model):
    """Who filed a report: confidential, stored apart, never in public output.

    An anonymous report has no row here.
    """

    report = models.OneToOneField(Report, on_delete=models.CASCADE, related_name="reporter")
    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=30, blank=True)
    email = models.EmailField(blank=True)
    device_id = models.CharField(max_length=200, blank=True)
    account_id = models.CharField(max_length=200, blank=True)
    contact = models.CharField(max_length=10, choices=ContactChannel.choices, default=ContactChannel.NONE)

    def __str__(self) -> str:  # never the name: this may end up in a log line
        return f"reporter of report {self.report_id}"

    def __repr__(self) -> str:
        return f"<Reporter report={self.report_id}>"


class ReportStep(models.Model):
    """One step of a report's workflow: who did what, when and why."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="steps")
    action = models.CharField(max_length=30)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150)
    note = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["report", "at", "id"]


class MediaKind(models.TextChoices):
    PHOTO = "photo", "Ảnh / Photo"
    VIDEO = "video", "Video"


class ReportMedia(models.Model):
    """A photo or short video of a report; its bytes are a file named by ``sha256`` (media_store).

    Photos are re-encoded without EXIF (location, device) before they are stored.
    The file is written before the row's transaction, so a committed row always
    finds its file (see :mod:`reports.services.media_store`). Rows from before
    the file store keep their bytes in ``data``.
    """

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="media")
    kind = models.CharField(max_length=10, choices=MediaKind.choices)
    stage = models.CharField(max_length=10, default="intake", help_text="intake (citizen) or result (agency).")
    content_type = models.CharField(max_length=60)
    data = models.BinaryField(blank=True, default=b"", help_text="Only rows from before the file store.")
    sha256 = models.CharField(max_length=64, blank=True, default="",
                              help_text="The file's name in REPORTS_MEDIA_DIR (its content's SHA-256).")
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["report", "id"]

    def content(self) -> bytes:
        """The bytes, from the file store or (older rows) the row itself."""
        from reports.services import media_store

        return media_store.read(self.sha256) if self.sha256 else bytes(self.data)


class Notification(models.Model):
    """Outbox: a status change to tell the reporter, sent by a pluggable sender.

    The address is read from :class:`Reporter` at send time, not copied here.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=10, choices=ContactChannel.choices)
    status = models.CharField(max_length=20, help_text="Report status announced.")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True,
                                           help_text="After a failure: not retried before this (back-off).")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["state", "created_at"], name="notification_state_time")]


class AgencyOfficer(models.Model):
    """Which agency an ``agency_officer`` works for: they see only its reports."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_agencies")
    agency = models.ForeignKey("twin.Agency", on_delete=models.CASCADE, related_name="officers")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "agency"], name="agency_officer_unique")]


class IntakeAttempt(models.Model):
    """A filing attempt by one client, for rate limits. Only a keyed hash of the client is kept."""

    client = models.CharField(max_length=64, db_index=True)
    at = models.DateTimeField(db_index=True)
