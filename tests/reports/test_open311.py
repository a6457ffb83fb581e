# SPDX-License-Identifier: AGPL-3.0-or-later
"""Open311 GeoReport v2 over real HTTP (Django's live server on the committed test database)."""
from __future__ import annotations

import io
from xml.etree import ElementTree as ET

import pytest
import requests
from PIL import Image

from tests.reports.conftest import inside, photo_with_exif, ward

# The live server commits what it files; the `live` fixture deletes it afterwards on its own connection.
pytestmark = pytest.mark.django_db


@pytest.fixture
def base(live):
    return live + "/open311/v2"


@pytest.fixture
def place(db):
    """A ward of Huế and a point inside it."""
    area = ward()
    return area, inside(area)


def test_services_list_every_category_in_json_and_xml(base):
    body = requests.get(f"{base}/services.json", timeout=30).json()
    codes = {s["service_code"] for s in body}
    assert {"littering", "sidewalk_encroachment", "flooding", "other"} <= codes
    first = body[0]
    assert set(first) >= {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
    assert first["metadata"] is False and first["type"] == "realtime"
    english = requests.get(f"{base}/services.json?lang=en", timeout=30).json()
    assert "Littering and rubbish" in {s["service_name"] for s in english}
    xml = requests.get(f"{base}/services.xml", timeout=30)
    assert xml.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(xml.content)
    assert root.tag == "services" and {s.findtext("service_code") for s in root.findall("service")} == codes
    definition = requests.get(f"{base}/services/littering.json", timeout=30).json()
    assert definition == {"service_code": "littering", "attributes": []}
    missing = requests.get(f"{base}/services/nope.json", timeout=30)
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404


def test_post_request_with_photo_then_read_it_back_by_id_token_and_list(base, live, place):
    area, (lon, lat) = place
    response = requests.post(f"{base}/requests.json", data={
        "service_code": "sidewalk_encroachment", "lat": lat, "long": lon, "description": "Quán cà phê lấn vỉa hè",
        "first_name": "Bí", "last_name": "Mật", "email": "bimat@example.org", "device_id": "dev-1"},
        files={"media": ("vỉa-hè.jpg", photo_with_exif(), "image/jpeg")}, timeout=60)
    assert response.status_code == 200, response.text
    [created] = response.json()
    rid, token = created["service_request_id"], created["token"]
    assert set(created) == {"service_request_id", "token", "service_notice", "account_id"}
    [item] = requests.get(f"{base}/requests/{rid}.json", timeout=30).json()
    assert item["service_code"] == "sidewalk_encroachment" and item["status"] == "open"
    assert item["agency_responsible"] == f"UBND {area.full_name_vi}" or item["agency_responsible"].startswith("UBND")
    assert item["ward"] == area.code and abs(item["lat"] - lat) < 1e-5 and abs(item["long"] - lon) < 1e-5
    assert item["media_url"].startswith(live)
    photo = requests.get(item["media_url"], timeout=30)
    image = Image.open(io.BytesIO(photo.content))
    assert image.format == "JPEG" and not image.getexif()
    assert b"SecretMake" not in photo.content and b"SERIAL-777" not in photo.content
    [by_token] = requests.get(f"{base}/tokens/{token}.json", timeout=30).json()
    assert by_token == {"service_request_id": rid, "token": token}
    listed = requests.get(f"{base}/requests.json", params={"service_request_id": rid}, timeout=30).json()
    assert [r["service_request_id"] for r in listed] == [rid]
    root = ET.fromstring(requests.get(f"{base}/requests/{rid}.xml", timeout=30).content)
    assert root.tag == "service_requests" and root.find("request").findtext("service_request_id") == str(rid)


def test_requests_page_and_page_size_and_filters(base, place):
    area, (lon, lat) = place
    for i in range(3):
        r = requests.post(f"{base}/requests.json", data={"service_code": "trees", "lat": lat + i * 0.001, "long": lon,
                                                         "description": f"cây {i}"}, timeout=60)
        assert r.status_code == 200, r.text
    page1 = requests.get(f"{base}/requests.json", params={"service_code": "trees", "page_size": 2}, timeout=30).json()
    page2 = requests.get(f"{base}/requests.json", params={"service_code": "trees", "page_size": 2, "page": 2},
                         timeout=30).json()
    assert len(page1) == 2 and len(page2) >= 1
    assert not {r["service_request_id"] for r in page1} & {r["service_request_id"] for r in page2}
    opened = requests.get(f"{base}/requests.json", params={"status": "closed", "service_code": "trees"}, timeout=30)
    assert opened.json() == []


@pytest.mark.parametrize("data, status, text", [
    ({"service_code": "littering", "description": "no place"}, 400, "place is missing"),
    ({"service_code": "nope", "lat": 16.46, "long": 107.59, "description": "x"}, 400, "unknown category"),
    ({"service_code": "littering", "lat": 21.0285, "long": 105.8542, "description": "Hà Nội"}, 400, "outside"),
    ({"service_code": "littering", "lat": "abc", "long": 107.59, "description": "x"}, 400, "must be numbers"),
    ({"service_code": "littering", "lat": 16.46, "long": 107.59, "description": "<script>alert(1)</script>"}, 400,
     "scripts"),
    ({"service_code": "littering", "lat": 16.46, "long": 107.59, "media_url": "http://example.org/a.jpg"}, 400,
     "media_url"),
])
def test_bad_requests_get_open311_errors(base, data, status, text):
    response = requests.post(f"{base}/requests.json", data=data, timeout=30)
    assert response.status_code == status
    [error] = response.json()
    assert error["code"] == status and text in error["description"]
    xml = requests.post(f"{base}/requests.xml", data=data, timeout=30)
    assert ET.fromstring(xml.content).find("error").findtext("code") == str(status)


def test_bad_query_parameters_are_400(base):
    for params in ({"page_size": 0}, {"page_size": 5000}, {"page": "x"}, {"status": "weird"},
                   {"start_date": "yesterday"}, {"service_code": "nope"}):
        response = requests.get(f"{base}/requests.json", params=params, timeout=30)
        assert response.status_code == 400, params
    assert requests.get(f"{base}/requests/999999999.json", timeout=30).status_code == 404
    assert requests.get(f"{base}/tokens/00000000-0000-0000-0000-000000000000.json", timeout=30).status_code == 404
    assert requests.put(f"{base}/requests.json", timeout=30).status_code == 405


def test_non_image_upload_is_refused_and_nothing_is_stored(base, place):
    from reports.models import Report

    before = Report.objects.count()
    _, (lon, lat) = place
    response = requests.post(f"{base}/requests.json", data={"service_code": "littering", "lat": lat, "long": lon},
                             files={"media": ("rác.jpg", b"#!/bin/sh\necho not an image\n", "image/jpeg")}, timeout=30)
    assert response.status_code == 400 and "not a readable image" in response.json()[0]["description"]
    assert Report.objects.count() == before


def test_flooding_from_one_client_is_rate_limited(base, settings, place):
    settings.REPORTS_RATE_LIMIT = (3, 600)
    _, (lon, lat) = place
    codes = [requests.post(f"{base}/requests.json", data={"service_code": "other", "lat": lat, "long": lon,
                                                          "description": f"lần {i}"}, timeout=30).status_code
             for i in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    limited = requests.post(f"{base}/requests.json", data={"service_code": "other", "lat": lat, "long": lon}, timeout=30)
    assert limited.headers["Retry-After"] == "600" and "too many" in limited.json()[0]["description"]


@pytest.mark.parametrize("output_format", ["json", "xml"])
def test_a_third_party_open311_client_reads_services_and_requests(base, place, output_format):
    """``georeport`` (PyPI), an unmodified GeoReport v2 client, in both formats."""
    from georeport import GeoReport

    area, (lon, lat) = place
    filed = requests.post(f"{base}/requests.json", data={"service_code": "lighting", "lat": lat, "long": lon,
                                                         "description": "Đèn đường tắt cả tuần"}, timeout=60)
    rid = str(filed.json()[0]["service_request_id"])
    client = GeoReport(base, output_format=output_format)
    services = client.get_service_list()
    assert "lighting" in {s["service_code"] for s in services}
    assert client.get_service_definition("lighting")["service_code"] == "lighting"
    one = client.get_service_request(rid)
    assert str(one["service_request_id"]) == rid and one["service_code"] == "lighting"
    assert str(one["ward"]) == area.code and one["status"] == "open"
    listed = client.get_service_requests(service_request_id=rid)
    listed = listed if isinstance(listed, list) else [listed]   # xmltodict gives a dict for one element
    assert [str(r["service_request_id"]) for r in listed] == [rid]
    if output_format == "json":   # georeport 0.3.1 cannot parse an empty XML list (<service_requests/>)
        assert client.get_service_requests(service_code="lighting", status="closed") == []


def _filed_on(area, days_ago: int, code: str = "lighting") -> int:
    from datetime import timedelta

    from django.utils import timezone

    from reports.services.intake import ReportDraft, file_report

    lon, lat = inside(area)
    return file_report(ReportDraft(category=code, lon=lon, lat=lat, description=f"{days_ago} ngày trước",
                                   reported_at=timezone.now() - timedelta(days=days_ago))).report.pk


def test_requests_without_dates_return_the_last_90_days_only(client, place):
    """GeoReport v2: a GET of requests without start_date/end_date returns the last 90 days."""
    area, _ = place
    recent, old = _filed_on(area, 10), _filed_on(area, 120)
    listed = client.get("/open311/v2/requests.json", {"service_code": "lighting", "page_size": 1000}).json()
    ids = {r["service_request_id"] for r in listed}
    assert recent in ids and old not in ids
    xml = ET.fromstring(client.get("/open311/v2/requests.xml", {"service_code": "lighting"}).content)
    assert str(old) not in {r.findtext("service_request_id") for r in xml.findall("request")}
    by_id = client.get("/open311/v2/requests.json", {"service_request_id": f"{old},{recent}"}).json()
    assert {r["service_request_id"] for r in by_id} == {old, recent}   # asked for by id: no window


def test_explicit_start_and_end_dates_still_select_older_requests(client, place):
    from datetime import timedelta

    from django.utils import timezone

    area, _ = place
    recent, old = _filed_on(area, 10), _filed_on(area, 120)
    now = timezone.now()
    iso = lambda d: (now - timedelta(days=d)).isoformat()  # noqa: E731
    since = client.get("/open311/v2/requests.json", {"service_code": "lighting", "start_date": iso(200)}).json()
    assert {old, recent} <= {r["service_request_id"] for r in since}
    between = client.get("/open311/v2/requests.json",
                         {"service_code": "lighting", "start_date": iso(130), "end_date": iso(110)}).json()
    assert [r["service_request_id"] for r in between] == [old]
    # An end alone: the 90 days before it.
    before = client.get("/open311/v2/requests.json", {"service_code": "lighting", "end_date": iso(100)}).json()
    assert [r["service_request_id"] for r in before] == [old]


@pytest.mark.parametrize("params, text", [
    ({"start_date": "2025-13-01T00:00:00Z"}, "start_date"),
    ({"end_date": "tomorrow"}, "end_date"),
    ({"start_date": "2025-07-01T00:00:00"}, "time zone"),
    ({"start_date": "2025-07-02T00:00:00Z", "end_date": "2025-07-01T00:00:00Z"}, "not be after"),
])
def test_bad_dates_are_400_with_the_reason(client, params, text):
    response = client.get("/open311/v2/requests.json", params)
    assert response.status_code == 400
    [error] = response.json()
    assert error["code"] == 400 and text in error["description"]
