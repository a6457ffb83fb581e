# SPDX-License-Identifier: AGPL-3.0-or-later
"""The workflow: verify, (re-)route, assign, start, resolve, reject, link a duplicate.

Each action is one transaction: the report row is locked, the move is
checked against :data:`~reports.models.REPORT_TRANSITIONS` and the actor's
rights, a :class:`~reports.models.ReportStep` records who, when and why, the
feature and the geo-event follow, and the reporter's notification is queued.

Who may do what: operators (*handle events*) every action on every report;
agency officers (*process reports*) start, resolve and reject the reports
of their own agency (:class:`~reports.models.AgencyOfficer`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from reports.models import (OPEN_STATUSES, REPORT_TRANSITIONS, AgencyOfficer, Report, ReportStatus, ReportStep)
from reports.services import notify, publish
from reports.services.intake import _store_media
from reports.services.media import MediaUpload, clean_uploads
from reports.services.routing import route_report
from reports.services.text import clean_text
from twin.errors import InvalidInput, InvalidTransition, NotAuthenticated, NotFound, PermissionDenied
from twin.models import Agency
from twin.roles import Capability, has_capability

OFFICER_ACTIONS = frozenset({"start", "resolve", "reject"})


@dataclass(frozen=True, slots=True)
class Actor:
    """A user, or a system component (``label`` only: the overdue check, a loader)."""

    user: Any = None
    label: str = ""

    @property
    def name(self) -> str:
        return self.user.get_username() if self.user is not None else (self.label or "system")


def officer_agency_ids(user) -> set[int]:
    return set(AgencyOfficer.objects.filter(user=user).values_list("agency_id", flat=True))


def can_act(actor: Actor, report: Report, action: str) -> bool:
    if actor.user is None:
        return True   # system components call services directly
    if has_capability(actor.user, Capability.HANDLE_EVENTS):
        return True
    return (action in OFFICER_ACTIONS and has_capability(actor.user, Capability.PROCESS_REPORTS)
            and report.agency_id in officer_agency_ids(actor.user))


def visible_reports(user):
    """Reports a staff user may work on: all for operators, their agency's for officers."""
    if user is None or not user.is_authenticated:
        raise NotAuthenticated("log in to see the work queue")
    query = Report.objects.select_related("category", "ward", "agency")
    if has_capability(user, Capability.HANDLE_EVENTS):
        return query
    if has_capability(user, Capability.PROCESS_REPORTS):
        return query.filter(agency_id__in=officer_agency_ids(user))
    raise PermissionDenied("Your role does not allow this.")


def _locked(report_id: int) -> Report:
    report = (Report.objects.select_for_update(of=("self",)).select_related("category", "city", "ward", "agency",
                                                                            "event").filter(pk=report_id).first())
    if report is None:
        raise NotFound(f"no report {report_id}")
    return report


def _record(report: Report, actor: Actor, action: str, from_status: str, note: str = "",
            changes: dict | None = None) -> None:
    ReportStep.objects.create(report=report, action=action, from_status=from_status, to_status=report.status,
                              actor=actor.user, actor_label=actor.name, note=note, changes=changes or {},
                              at=timezone.now())


def _move(report_id: int, actor: Actor, action: str, to_status: str | None, apply, note: str = "") -> Report:
    """The shared frame of every action: lock, check, apply, record, publish, notify."""
    with transaction.atomic():
        report = _locked(report_id)
        if not can_act(actor, report, action):
            raise PermissionDenied("Your role does not allow this action on this report.")
        before = report.status
        if to_status is not None and to_status != before and to_status not in REPORT_TRANSITIONS[before]:
            raise InvalidTransition(f"report {report_id} is {before}; it cannot become {to_status} ({action})")
        if to_status is None and before not in OPEN_STATUSES:
            raise InvalidTransition(f"report {report_id} is closed ({before})")
        changes = apply(report) or {}
        if to_status is not None:
            report.status = to_status
            if to_status in (ReportStatus.RESOLVED, ReportStatus.REJECTED):
                report.closed_at = timezone.now()
        report.save()
        _record(report, actor, action, before, note, changes)
        publish.write_feature(report)
        if changes.get("agency") is not None or action == "reroute":
            publish.write_event(report, producer=actor.name)
        publish.follow_status(report, actor.user, actor.name, note or action)
        if report.status != before:
            notify.queue(report)
    return report


def verify(report_id: int, actor: Actor, note: str = "") -> Report:
    return _move(report_id, actor, "verify", ReportStatus.VERIFIED, lambda r: None, note)


def assign(report_id: int, actor: Actor, note: str = "", agency_code: str | None = None) -> Report:
    """Hand the report to its routed agency (or another one, which is then a re-route)."""
    def apply(report: Report) -> dict:
        if agency_code and (report.agency is None or agency_code != report.agency.code):
            report.agency = _agency(agency_code)
            return {"agency": agency_code}
        if report.agency_id is None:
            raise InvalidInput("the report has no agency yet; name one (agency)")
        return {}
    return _move(report_id, actor, "assign", ReportStatus.ASSIGNED, apply, note)


def reroute(report_id: int, actor: Actor, agency_code: str, reason: str) -> Report:
    """Send the report to another agency; the reason is required and kept."""
    reason = clean_text(reason, field="reason", max_length=2000, required=True)

    def apply(report: Report) -> dict:
        previous = report.agency.code if report.agency else None
        report.agency = _agency(agency_code)
        report.routing = {**report.routing, "agency": agency_code, "step": "manual", "rerouted_from": previous}
        return {"agency": agency_code, "from_agency": previous}
    return _move(report_id, actor, "reroute", None, apply, reason)


def route_again(report_id: int, actor: Actor, reason: str) -> Report:
    """Run the routing chain again (after the place or the rules changed)."""
    reason = clean_text(reason, field="reason", max_length=2000, required=True)

    def apply(report: Report) -> dict:
        route = route_report(report.geom, report.category.route_as)
        report.ward, report.agency, report.routing = route.ward, route.agency, route.as_payload()
        return {"agency": route.agency.code if route.agency else None, "step": route.step}
    return _move(report_id, actor, "reroute", None, apply, reason)


def start(report_id: int, actor: Actor, note: str = "") -> Report:
    return _move(report_id, actor, "start", ReportStatus.IN_PROGRESS, lambda r: None, note)


def resolve(report_id: int, actor: Actor, result: str, photos: tuple[MediaUpload, ...] = ()) -> Report:
    """Close the report with what was done, and optional photos of the result."""
    result = clean_text(result, field="result", max_length=5000, required=True)
    media = clean_uploads(list(photos))

    def apply(report: Report) -> dict:
        report.result_text = result
        ids = _store_media(report, media, "result")
        return {"result_photos": len(ids)} if ids else {}
    return _move(report_id, actor, "resolve", ReportStatus.RESOLVED, apply, result)


def reject(report_id: int, actor: Actor, reason: str) -> Report:
    reason = clean_text(reason, field="reason", max_length=2000, required=True)

    def apply(report: Report) -> dict:
        report.reject_reason = reason
        return {}
    return _move(report_id, actor, "reject", ReportStatus.REJECTED, apply, reason)


def link_duplicate(report_id: int, original_id: int, actor: Actor) -> Report:
    """Close a report as a duplicate of an open one; the original carries on."""
    if report_id == original_id:
        raise InvalidInput("a report cannot duplicate itself")
    original = Report.objects.filter(pk=original_id).first()
    if original is None:
        raise NotFound(f"no report {original_id}")
    reason = f"Trùng với phản ánh #{original_id} / Duplicate of report #{original_id}"

    def apply(report: Report) -> dict:
        report.duplicate_of, report.reject_reason = original, reason
        return {"duplicate_of": original_id}
    return _move(report_id, actor, "link_duplicate", ReportStatus.REJECTED, apply, reason)


def _agency(code: str) -> Agency:
    agency = Agency.objects.filter(code=(code or "").strip()).first()
    if agency is None:
        raise InvalidInput(f"unknown agency {code!r}")
    return agency


ACTIONS = {"verify": verify, "assign": assign, "reroute": reroute, "route_again": route_again, "start": start,
           "resolve": resolve, "reject": reject, "link_duplicate": link_duplicate}


def add_officer(username: str, agency_code: str) -> AgencyOfficer:
    """Link a user to an agency: as an ``agency_officer`` they see and handle its reports."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"no user {username!r}")
    with transaction.atomic():
        link, _ = AgencyOfficer.objects.get_or_create(user=user, agency=_agency(agency_code))
    return link
