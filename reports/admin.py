# SPDX-License-Identifier: AGPL-3.0-or-later
"""Admin pages for reports: categories and officer links editable, reports read-only.

Reports change only through the workflow (``/reports/work/``), so every step
is recorded; the reporter's identity has no admin page at all.
"""
from django.contrib import admin

from reports.models import AgencyOfficer, Report, ReportCategory
from twin.admin import RoleAdmin
from twin.roles import Capability as C


@admin.register(ReportCategory)
class ReportCategoryAdmin(RoleAdmin):
    view_capability = C.READ_EVENTS
    change_capability = C.MANAGE_LAYERS
    list_display = ("code", "name_vi", "name_en", "deadline_hours", "route_as", "active")


@admin.register(AgencyOfficer)
class AgencyOfficerAdmin(RoleAdmin):
    view_capability = C.HANDLE_EVENTS
    change_capability = C.MANAGE_LAYERS
    list_display = ("user", "agency")


@admin.register(Report)
class ReportAdmin(RoleAdmin):
    view_capability = C.HANDLE_EVENTS
    change_capability = None
    list_display = ("id", "category", "status", "ward", "agency", "reported_at", "due_at", "overdue_at")
    list_filter = ("status", "category", "channel")
    fields = ("city", "category", "status", "channel", "description", "address", "ward", "agency", "routing",
              "duplicate_of", "result_text", "reject_reason", "reported_at", "due_at", "closed_at", "overdue_at",
              "feature", "event")
    readonly_fields = fields
    show_full_result_count = False

    def has_add_permission(self, request):
        return False
