# SPDX-License-Identifier: AGPL-3.0-or-later
"""Work queue and actions for operators and agency officers, citizen notifications, the overdue command."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from reports.models import Notification, Report
from reports.services import notify, workflow
from reports.services.intake import ReportDraft, ReporterInfo, file_report
from tests.reports.conftest import SECRET, inside, make_user, photo_with_exif, ward
from twin.models import Feature, GeoEvent
from twin.roles import Role
from twin.services import create_api_token

pytestmark = pytest.mark.django_db


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {create_api_token(user, 't')[1]}"}


def filed(category="sidewalk_encroachment", area=None, **kw) -> Report:
    lon, lat = inside(area or ward())
    return file_report(ReportDraft(category=category, lon=lon, lat=lat, description="vỉa hè", **kw)).report


def test_officers_see_only_their_agency_and_operators_see_all(client, hue):
    area = ward()
    mine, other = filed(area=area), filed("littering", area=area)
    officer = make_user(Role.AGENCY_OFFICER, (f"ubnd-{area.code}",))
    operator = make_user(Role.OPERATOR)
    ids = {r["id"] for r in client.get(reverse("reports:work-api"), **bearer(officer)).json()["reports"]}
    assert mine.pk in ids and other.pk not in ids
    ids = {r["id"] for r in client.get(reverse("reports:work-api"), **bearer(operator)).json()["reports"]}
    assert {mine.pk, other.pk} <= ids
    assert client.get(reverse("reports:work-api")).status_code == 401
    assert client.get(reverse("reports:work-api"), **bearer(make_user(Role.TOURISM_OFFICER))).status_code == 403


def test_full_workflow_through_the_api_with_result_photo(client, hue):
    area = ward()
    report = filed(area=area)
    operator, officer = make_user(Role.OPERATOR), make_user(Role.AGENCY_OFFICER, (f"ubnd-{area.code}",))
    url = lambda action: reverse("reports:action-api", args=[report.pk, action])  # noqa: E731
    assert client.post(url("verify"), {}, content_type="application/json", **bearer(officer)).status_code == 403
    assert client.post(url("verify"), {"note": "gọi lại"}, content_type="application/json",
                       **bearer(operator)).json()["status"] == "verified"
    assert client.post(url("assign"), {}, content_type="application/json", **bearer(operator)).status_code == 200
    assert client.post(url("start"), {}, content_type="application/json", **bearer(officer)).status_code == 200
    missing = client.post(url("resolve"), {}, content_type="application/json", **bearer(officer))
    assert missing.status_code == 400 and "result" in missing.json()["description"]
    photo = SimpleUploadedFile("xong.jpg", photo_with_exif(), "image/jpeg")
    done = client.post(url("resolve"), {"result": "Đã giải toả, lập biên bản", "photos": [photo]}, **bearer(officer))
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "resolved" and done.json()["result"] == "Đã giải toả, lập biên bản"
    report.refresh_from_db()
    assert report.media.filter(stage="result").count() == 1
    assert client.post(url("start"), {}, content_type="application/json", **bearer(officer)).status_code == 409
    assert client.post(url("fly"), {}, content_type="application/json", **bearer(operator)).status_code == 404
    assert client.post(reverse("reports:action-api", args=[10**9, "verify"]), {}, content_type="application/json",
                       **bearer(operator)).status_code == 404


def test_reroute_through_the_api_needs_a_known_agency_and_a_reason(client, hue):
    report = filed()
    operator = make_user(Role.OPERATOR)
    url = reverse("reports:action-api", args=[report.pk, "reroute"])
    assert client.post(url, {"agency": "hue-cong-an"}, content_type="application/json",
                       **bearer(operator)).status_code == 400
    assert client.post(url, {"agency": "nope", "reason": "x"}, content_type="application/json",
                       **bearer(operator)).status_code == 400
    ok = client.post(url, {"agency": "hue-cong-an", "reason": "lấn chiếm lòng đường"}, content_type="application/json",
                     **bearer(operator))
    assert ok.status_code == 200 and ok.json()["agency"] == "hue-cong-an"


def test_work_pages_for_officers(client, hue):
    area = ward()
    report = filed(area=area)
    officer = make_user(Role.AGENCY_OFFICER, (f"ubnd-{area.code}",))
    operator = make_user(Role.OPERATOR)
    workflow.verify(report.pk, workflow.Actor(user=operator))
    workflow.assign(report.pk, workflow.Actor(user=operator))
    assert client.get(reverse("reports:work")).status_code == 302
    client.force_login(officer)
    listing = client.get(reverse("reports:work"))
    assert listing.status_code == 200 and f"/reports/work/{report.pk}/" in listing.content.decode()
    page = client.get(reverse("reports:work-detail", args=[report.pk]))
    assert page.status_code == 200 and "Hoàn thành / Resolve" in page.content.decode()
    client.post(reverse("reports:work-detail", args=[report.pk]), {"action": "start"})
    bad = client.post(reverse("reports:work-detail", args=[report.pk]), {"action": "resolve", "result": ""})
    assert bad.status_code == 400 and "result" in bad.content.decode()
    client.post(reverse("reports:work-detail", args=[report.pk]), {"action": "resolve", "result": "Xong"})
    assert Report.objects.get(pk=report.pk).status == "resolved"
    client.force_login(make_user(Role.AGENCY_OFFICER, ("hue-so-du-lich",)))
    assert client.get(reverse("reports:work-detail", args=[report.pk])).status_code == 404


def test_citizens_are_told_of_each_status_change_through_their_chosen_contact(hue, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    area = ward()
    report = filed(area=area, reporter=ReporterInfo(name=SECRET["name"], email=SECRET["email"], contact="email"))
    silent = filed("lighting", area=area)   # anonymous: nobody to tell
    operator = make_user(Role.OPERATOR)
    for step in (workflow.verify, workflow.assign):
        step(report.pk, workflow.Actor(user=operator))
        step(silent.pk, workflow.Actor(user=operator))
    workflow.resolve(report.pk, workflow.Actor(user=operator), "Đã xử lý xong")
    queued = list(Notification.objects.filter(report=report).values_list("status", flat=True))
    assert queued == ["received", "verified", "assigned", "resolved"]
    assert not Notification.objects.filter(report=silent).exists()
    assert SECRET["email"] not in " ".join(Notification.objects.values_list("body", flat=True))
    sent, failed = notify.send_pending()
    assert (sent, failed) == (4, 0)
    assert [m.to for m in mail.outbox] == [[SECRET["email"]]] * 4
    assert "Đã xử lý xong" in mail.outbox[-1].body and "đã được xử lý xong" in mail.outbox[-1].subject


def test_a_failing_sender_is_recorded_and_retried(hue):
    report = filed(reporter=ReporterInfo(phone=SECRET["phone"], contact="sms"))

    def broken(reporter, note):
        raise ConnectionError("gateway down")

    with notify.registered("sms", broken):
        assert notify.send_pending() == (0, 1)
    note = Notification.objects.get(report=report)
    assert note.state == "failed" and note.attempts == 1 and "gateway down" in note.last_error
    assert note.next_attempt_at > timezone.now()            # backed off: not retried at once
    delivered = []
    with notify.registered("sms", lambda reporter, n: delivered.append((reporter.phone, n.status))):
        assert notify.send_pending() == (0, 0)
        assert notify.send_pending(now=note.next_attempt_at) == (1, 0)
    assert delivered == [(SECRET["phone"], "received")]
    note.refresh_from_db()
    assert note.state == "sent" and note.attempts == 2 and note.next_attempt_at is None


def test_check_overdue_command_raises_events(hue, capsys):
    report = filed(reported_at=timezone.now() - timedelta(days=30))
    call_command("check_overdue")
    assert "newly overdue" in capsys.readouterr().out
    assert GeoEvent.objects.filter(kind="report_overdue", source_key=f"report-overdue:{report.pk}").exists()
    assert Feature.objects.get(pk=report.feature_id).properties["overdue"] is True


def test_report_officer_command_links_a_user_to_an_agency(hue, capsys):
    from reports.models import AgencyOfficer

    user = make_user(Role.AGENCY_OFFICER)
    call_command("report_officer", user.username, "hue-cong-an")
    assert "hue-cong-an" in capsys.readouterr().out
    assert AgencyOfficer.objects.filter(user=user, agency__code="hue-cong-an").exists()
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="unknown agency"):
        call_command("report_officer", user.username, "nope")


def test_admin_shows_reports_read_only_and_never_the_reporter(client, hue):
    report = filed(reporter=ReporterInfo(name=SECRET["name"], phone=SECRET["phone"]))
    client.force_login(make_user(Role.OPERATOR))
    listing = client.get("/admin/reports/report/")
    assert listing.status_code == 200
    page = client.get(f"/admin/reports/report/{report.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200 and report.category.name_vi in html
    assert SECRET["name"] not in html and SECRET["phone"] not in html
    assert client.get("/admin/reports/report/add/").status_code == 403
    assert client.get("/admin/reports/reportcategory/").status_code == 200
