# SPDX-License-Identifier: AGPL-3.0-or-later
"""The citizen web form and the hotline operator form: good input, bad input, nothing half-stored."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from reports.models import IntakeAttempt, Report, ReportMedia, Reporter
from tests.reports.conftest import SECRET, inside, make_user, photo_with_exif, ward
from twin.models import Feature, GeoEvent
from twin.roles import Role

pytestmark = pytest.mark.django_db


def form_data(**overrides):
    lon, lat = inside(ward())
    data = {"category": "littering", "lon": f"{lon:.6f}", "lat": f"{lat:.6f}", "description": "Rác ở hẻm 12",
            "name": SECRET["name"], "phone": SECRET["phone"], "email": "", "contact": "sms"}
    data.update(overrides)
    return data


def counts():
    return (Report.objects.count(), Reporter.objects.count(), ReportMedia.objects.count(), Feature.objects.count(),
            GeoEvent.objects.count())


def test_citizen_form_is_vietnamese_first_mobile_friendly_and_offline(client, hue):
    page = client.get(reverse("reports:new"))
    html = page.content.decode()
    assert page.status_code == 200 and '<html lang="vi">' in html
    assert 'name="viewport"' in html and "Gửi phản ánh" in html and "Send" in html
    assert "/static/map_ui/vendor/ol/ol.js" in html
    assert 'src="http' not in html and 'href="http' not in html and "//cdn" not in html   # nothing remote
    assert "Dùng vị trí của tôi" in html and 'capture="environment"' in html and "multiple" in html
    assert "Xả rác, rác thải / Littering and rubbish" in html


def test_citizen_files_a_report_with_photos(client, hue):
    photos = [SimpleUploadedFile(f"p{i}.jpg", photo_with_exif(), "image/jpeg") for i in range(2)]
    response = client.post(reverse("reports:new"), {**form_data(), "media": photos})
    assert response.status_code == 201, response.content.decode()[:400]
    report = Report.objects.latest("pk")
    assert report.channel == "web" and report.media.count() == 2
    assert Reporter.objects.get(report=report).contact == "sms"
    html = response.content.decode()
    assert str(report.token) in html and SECRET["phone"] not in html and SECRET["name"] not in html


def test_anonymous_report_keeps_no_identity(client, hue):
    response = client.post(reverse("reports:new"), {**form_data(), "anonymous": "on"})
    assert response.status_code == 201
    assert not Reporter.objects.filter(report=Report.objects.latest("pk")).exists()


@pytest.mark.parametrize("change, status, message", [
    ({"lon": "", "lat": ""}, 400, "thiếu vị trí"),
    ({"description": "<script>alert(1)</script>"}, 400, "không được chứa mã HTML"),
    ({"address": '<a href="javascript:alert(1)">x</a>'}, 400, "HTML"),
    ({"category": ""}, 400, "category"),
    ({"lon": "107.59", "lat": "91"}, 400, "longitude/latitude"),
    ({"lon": "105.8542", "lat": "21.0285"}, 400, "ngoài"),
    ({"email": "not-an-email", "contact": "email"}, 400, "email"),
])
def test_bad_input_gets_a_clear_error_and_nothing_is_stored(client, hue, change, status, message):
    before = counts()
    response = client.post(reverse("reports:new"), form_data(**change))
    assert response.status_code == status
    html = response.content.decode()
    assert 'role="alert"' in html and message in html
    assert "<script>alert(1)</script>" not in html            # re-shown values are escaped
    assert counts() == before


def test_oversized_and_non_image_uploads_are_refused_with_nothing_stored(client, hue, settings):
    settings.REPORTS_MAX_PHOTO_BYTES = 2000
    before = counts()
    big = SimpleUploadedFile("big.jpg", photo_with_exif(size=(800, 600)), "image/jpeg")
    assert len(big.read()) > 2000
    big.seek(0)
    response = client.post(reverse("reports:new"), {**form_data(), "media": [big]})
    assert response.status_code == 413 and "limit" in response.content.decode()
    fake = SimpleUploadedFile("virus.jpg", b"MZ\x90\x00 this is an exe", "image/jpeg")
    response = client.post(reverse("reports:new"), {**form_data(), "media": [fake]})
    assert response.status_code == 400 and "not a readable image" in response.content.decode()
    too_many = [SimpleUploadedFile(f"{i}.png", _png(), "image/png") for i in range(6)]
    response = client.post(reverse("reports:new"), {**form_data(), "media": too_many})
    assert response.status_code == 400 and "at most 5 photos" in response.content.decode()
    assert counts() == before


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG")
    return out.getvalue()


def test_flooding_the_form_from_one_client_is_limited(client, hue, settings):
    settings.REPORTS_RATE_LIMIT = (2, 600)
    IntakeAttempt.objects.all().delete()
    codes = [client.post(reverse("reports:new"), form_data(description=f"lần {i}")).status_code for i in range(3)]
    assert codes == [201, 201, 429]
    limited = client.post(reverse("reports:new"), form_data())
    assert limited["Retry-After"] == "600" and "thử lại sau" in limited.content.decode()


def test_operator_form_needs_login_and_files_hotline_reports_with_duplicate_link(client, hue):
    assert client.get(reverse("reports:operator-new")).status_code == 302
    client.force_login(make_user(Role.TOURISM_OFFICER))
    assert client.get(reverse("reports:operator-new")).status_code == 403
    operator = make_user(Role.OPERATOR)
    client.force_login(operator)
    page = client.get(reverse("reports:operator-new"))
    assert page.status_code == 200 and "1022" in page.content.decode()
    data = form_data()
    first = client.post(reverse("reports:operator-new"), data)
    assert first.status_code == 302
    original = Report.objects.latest("pk")
    assert original.channel == "hotline" and original.steps.get(action="file").actor_label == operator.username
    second = client.post(reverse("reports:operator-new"), {**data, "duplicate_of": str(original.pk)})
    assert second.status_code == 302
    duplicate = Report.objects.latest("pk")
    assert duplicate.duplicate_of_id == original.pk and duplicate.status == "rejected"


def test_behind_a_proxy_the_configured_header_names_the_client(client, hue, settings):
    settings.REPORTS_RATE_LIMIT = (1, 600)
    settings.REPORTS_CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    IntakeAttempt.objects.all().delete()
    first = client.post(reverse("reports:new"), form_data(), HTTP_X_REAL_IP="203.0.113.7")
    other = client.post(reverse("reports:new"), form_data(), HTTP_X_REAL_IP="203.0.113.8")
    again = client.post(reverse("reports:new"), form_data(), HTTP_X_REAL_IP="203.0.113.7")
    assert (first.status_code, other.status_code, again.status_code) == (201, 201, 429)
    assert not IntakeAttempt.objects.filter(client__contains="203.0.113").exists()   # only keyed hashes
