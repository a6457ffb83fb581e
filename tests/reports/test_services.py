# SPDX-License-Identifier: AGPL-3.0-or-later
"""Filing, routing, the workflow, duplicates and refusals, against the real Huế data in PostGIS."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reports.models import Report, Reporter, ReportCategory, ReportStatus, ReportStep
from reports.services import workflow
from reports.services.errors import MissingLocation, OutsideCity, UnsafeText
from reports.services.intake import ReportDraft, ReporterInfo, file_report
from reports.services.overdue import check_overdue
from reports.services.workflow import Actor
from tests.reports.conftest import SECRET, inside, make_user, ward
from twin.errors import InvalidInput, InvalidTransition, PermissionDenied
from twin.models import EventStatus, Feature, GeoEvent
from twin.roles import Role

pytestmark = pytest.mark.django_db


def draft(category="sidewalk_encroachment", area=None, **kw) -> ReportDraft:
    lon, lat = inside(area or ward())
    return ReportDraft(category=category, lon=lon, lat=lat, description=kw.pop("description", "Quán lấn chiếm vỉa hè"),
                       **kw)


def test_categories_are_data_with_names_and_deadlines_for_every_kind_the_issue_lists():
    codes = set(ReportCategory.objects.values_list("code", flat=True))
    assert {"phone_advertising", "sidewalk_encroachment", "illegal_advertising", "street_vending",
            "unlicensed_construction", "wastewater", "littering", "road_damage", "lighting", "trees", "flooding",
            "public_order", "other"} <= codes
    for c in ReportCategory.objects.all():
        assert c.name_vi and c.name_en and c.deadline_hours > 0


def test_filed_report_is_a_feature_of_the_reports_layer_and_a_geo_event_routed_to_the_ward(hue):
    area = ward()
    filed = file_report(draft(area=area))
    report = filed.report
    assert report.status == ReportStatus.RECEIVED
    assert report.ward == area and report.agency.code == f"ubnd-{area.code}"
    assert report.routing["step"] == "ward_default"
    feature = Feature.objects.get(pk=report.feature_id)
    assert feature.layer.slug == "hue-reports" and feature.layer.kind == "citizen_report" and feature.layer.is_public
    assert feature.properties["report_status"] == "received" and feature.properties["ward"] == area.code
    event = GeoEvent.objects.get(pk=report.event_id)
    assert event.kind == "citizen_report" and event.agency == report.agency and event.ward == area
    assert event.source_feature_id == feature.pk
    assert report.due_at - report.reported_at == timedelta(hours=report.category.deadline_hours)
    assert [s.action for s in report.steps.all()] == ["file", "route"]


def test_category_routes_to_the_specialised_agency_through_the_chain(hue):
    report = file_report(draft("littering")).report
    assert report.agency.code == "hue-so-nong-nghiep-moi-truong"
    assert report.routing["step"] == "province_category"


def test_place_outside_the_city_is_refused_and_nothing_is_stored(hue):
    before = Report.objects.count(), Feature.objects.count(), GeoEvent.objects.count()
    with pytest.raises(OutsideCity, match="outside"):
        file_report(ReportDraft(category="littering", lon=105.8542, lat=21.0285, description="Hà Nội"))
    with pytest.raises(OutsideCity):   # Đà Nẵng, just south of Huế: a province, but not this city
        file_report(ReportDraft(category="littering", lon=108.2022, lat=16.0544, description="Đà Nẵng"))
    assert (Report.objects.count(), Feature.objects.count(), GeoEvent.objects.count()) == before


def test_missing_location_unknown_category_and_scripts_are_clear_errors(hue):
    with pytest.raises(MissingLocation, match="place is missing"):
        file_report(ReportDraft(category="littering", lon=None, lat=None, description="x"))
    with pytest.raises(InvalidInput, match="unknown category"):
        file_report(draft("no_such_thing"))
    with pytest.raises(UnsafeText):
        file_report(draft(description='<script>alert("x")</script>'))
    with pytest.raises(UnsafeText):
        file_report(draft(reporter=ReporterInfo(name='<img src=x onerror=alert(1)>')))
    assert not Report.objects.exists()


def test_reporter_is_stored_apart_and_anonymous_reports_have_no_reporter_row(hue):
    named = file_report(draft(reporter=ReporterInfo(**SECRET, contact="email"))).report
    anonymous = file_report(draft("lighting")).report
    assert Reporter.objects.get(report=named).email == SECRET["email"]
    assert not Reporter.objects.filter(report=anonymous).exists()
    assert not {"name", "phone", "email", "device_id"} & {f.name for f in Report._meta.get_fields()}


def _offset(lon, lat, metres_east):
    from pyproj import Geod

    lon2, lat2, _ = Geod(ellps="WGS84").fwd(lon, lat, 90, metres_east)
    return lon2, lat2


def test_duplicates_are_same_category_within_50_m_and_open(hue):
    lon, lat = inside(ward())
    first = file_report(ReportDraft(category="littering", lon=lon, lat=lat, description="rác")).report
    near = file_report(ReportDraft(category="littering", lon=_offset(lon, lat, 30)[0], lat=lat, description="rác"))
    assert [d.pk for d in near.duplicates] == [first.pk]
    far = file_report(ReportDraft(category="littering", lon=_offset(lon, lat, 80)[0], lat=lat, description="rác"))
    assert far.duplicates == [] or first.pk not in [d.pk for d in far.duplicates]
    other = file_report(ReportDraft(category="lighting", lon=lon, lat=lat, description="đèn"))
    assert other.duplicates == []
    operator = make_user(Role.OPERATOR)
    workflow.link_duplicate(near.report.pk, first.pk, Actor(user=operator))
    linked = Report.objects.get(pk=near.report.pk)
    assert linked.duplicate_of_id == first.pk and linked.status == ReportStatus.REJECTED
    workflow.reject(first.pk, Actor(user=operator), "không thuộc thẩm quyền")
    again = file_report(ReportDraft(category="littering", lon=lon, lat=lat, description="rác"))
    assert again.duplicates == []   # closed reports are not offered


def test_full_workflow_records_who_and_when_and_moves_the_event(hue):
    area = ward()
    report = file_report(draft(area=area)).report
    operator = make_user(Role.OPERATOR)
    officer = make_user(Role.AGENCY_OFFICER, (f"ubnd-{area.code}",))
    workflow.verify(report.pk, Actor(user=operator), "đã gọi lại xác minh")
    workflow.assign(report.pk, Actor(user=operator))
    workflow.start(report.pk, Actor(user=officer))
    done = workflow.resolve(report.pk, Actor(user=officer), "Đã giải toả vỉa hè")
    assert done.status == ReportStatus.RESOLVED and done.closed_at is not None
    steps = list(ReportStep.objects.filter(report=report).values_list("action", "actor_label"))
    assert [a for a, _ in steps] == ["file", "route", "verify", "assign", "start", "resolve"]
    assert steps[2][1] == operator.username and steps[5][1] == officer.username
    event = GeoEvent.objects.get(pk=report.event_id)
    assert event.status == EventStatus.RESOLVED
    assert [h.to_status for h in event.history.all()] == ["new", "acknowledged", "dispatched", "resolved"]
    feature = Feature.objects.get(pk=report.feature_id)
    assert feature.properties["report_status"] == "resolved" and feature.properties["result"] == "Đã giải toả vỉa hè"
    with pytest.raises(InvalidTransition):
        workflow.start(report.pk, Actor(user=officer))


def test_officer_acts_only_on_their_agency_reports(hue):
    area = ward()
    report = file_report(draft(area=area)).report
    stranger = make_user(Role.AGENCY_OFFICER, ("hue-so-du-lich",))
    operator = make_user(Role.OPERATOR)
    workflow.verify(report.pk, Actor(user=operator))
    workflow.assign(report.pk, Actor(user=operator))
    with pytest.raises(PermissionDenied):
        workflow.start(report.pk, Actor(user=stranger))
    with pytest.raises(PermissionDenied):   # officers do not verify or re-route
        workflow.reroute(report.pk, Actor(user=make_user(Role.AGENCY_OFFICER, (f"ubnd-{area.code}",))),
                         "hue-cong-an", "x")
    assert not workflow.visible_reports(stranger).filter(pk=report.pk).exists()


def test_reroute_needs_a_reason_and_moves_report_feature_and_event(hue):
    report = file_report(draft()).report
    operator = make_user(Role.OPERATOR)
    with pytest.raises(InvalidInput, match="reason"):
        workflow.reroute(report.pk, Actor(user=operator), "hue-cong-an", "  ")
    workflow.reroute(report.pk, Actor(user=operator), "hue-cong-an", "Lấn chiếm lòng đường: công an xử lý")
    report.refresh_from_db()
    assert report.agency.code == "hue-cong-an" and report.routing["rerouted_from"].startswith("ubnd-")
    assert GeoEvent.objects.get(pk=report.event_id).agency.code == "hue-cong-an"
    assert Feature.objects.get(pk=report.feature_id).properties["agency"] == "hue-cong-an"
    step = report.steps.get(action="reroute")
    assert step.note.startswith("Lấn chiếm") and step.changes["from_agency"].startswith("ubnd-")


def test_reject_needs_a_reason(hue):
    report = file_report(draft()).report
    operator = make_user(Role.OPERATOR)
    with pytest.raises(InvalidInput):
        workflow.reject(report.pk, Actor(user=operator), "")
    workflow.reject(report.pk, Actor(user=operator), "Không đúng vị trí")
    assert GeoEvent.objects.get(pk=report.event_id).status == EventStatus.DISMISSED


def test_overdue_reports_raise_one_geo_event_each(hue):
    old = timezone.now() - timedelta(days=10)
    report = file_report(draft(reported_at=old)).report
    fresh = file_report(draft("lighting")).report
    assert check_overdue() >= 1
    assert check_overdue() == 0   # once per report
    event = GeoEvent.objects.get(source_key=f"report-overdue:{report.pk}")
    assert event.kind == "report_overdue" and event.agency_id == report.agency_id
    assert set(event.payload) == {"report_id", "report_status", "due_at", "hours_late", "agency"}
    assert not GeoEvent.objects.filter(source_key=f"report-overdue:{fresh.pk}").exists()
    assert Feature.objects.get(pk=report.feature_id).properties["overdue"] is True
    assert report.steps.filter(action="overdue", actor_label="overdue-check").exists()
