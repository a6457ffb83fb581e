# SPDX-License-Identifier: AGPL-3.0-or-later
"""The reporter's identity never leaves the system: every public output, API, export, tile, log line
and event payload is searched for it after a full report life (filed with photo, handled, resolved)."""
from __future__ import annotations

import io
import json
import logging
import math

import pytest
import requests
from django.core import mail
from django.core.management import call_command
from PIL import Image

from reports.models import Report, Reporter
from reports.services.media import MediaUpload, clean_uploads
from reports.services.notify import send_pending
from tests.reports.conftest import SECRET, in_own_thread, inside, make_user, photo_with_exif, ward
from twin.models import Feature, GeoEvent
from twin.roles import Role
from twin.services import create_api_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(live):
    """An operator and the environment department's officer, committed (the live server must see them)."""
    made = {}

    def create():
        operator = make_user(Role.OPERATOR)
        officer = make_user(Role.AGENCY_OFFICER, ("hue-so-nong-nghiep-moi-truong",))
        leader = make_user(Role.LEADER)
        made["users"] = [operator, officer, leader]
        made["tokens"] = tuple(create_api_token(u, "t")[1] for u in made["users"])

    in_own_thread(create)
    yield made["tokens"]
    in_own_thread(lambda: [u.delete() for u in made["users"]])

SECRET_VALUES = [SECRET["name"], SECRET["phone"], SECRET["email"], SECRET["device_id"], "Bímật", "bimat.reporter"]


def assert_clean(label: str, text: str | bytes) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for value in SECRET_VALUES:
        assert value not in text, f"{value!r} leaked into {label}"


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_photo_exif_location_and_device_are_stripped():
    raw = photo_with_exif()
    source = Image.open(io.BytesIO(raw))
    assert source.getexif().get_ifd(0x8825)      # the test photo really carries GPS
    [clean] = clean_uploads([MediaUpload("p.jpg", raw)])
    image = Image.open(io.BytesIO(clean.data))
    assert not image.getexif() and not image.getexif().get_ifd(0x8825)
    assert "exif" not in image.info and "icc_profile" not in image.info
    for marker in (b"SecretMake", b"SecretModel", b"SERIAL-777", b"SecretSoftware", b"Exif\x00\x00"):
        assert marker not in clean.data


def mp4(seconds: float, extra: bytes = b"") -> bytes:
    """A minimal MP4: ftyp, then a movie header (timescale 1000) and optional atoms."""
    mvhd = b"\x00\x00\x00\x6cmvhd" + bytes(4) + bytes(8) + (1000).to_bytes(4, "big") + \
        int(seconds * 1000).to_bytes(4, "big") + bytes(80)
    return b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 12 + mvhd + extra + b"\x00" * 64


def test_mp4_location_atom_is_blanked():
    location = b"+16.4637+107.5905/"
    atom = (8 + len(location) + 4).to_bytes(4, "big") + b"\xa9xyz" + b"\x00\x12\x15\xc7" + location
    [clean] = clean_uploads([MediaUpload("v.mp4", mp4(12, atom))])
    assert clean.kind == "video" and location not in clean.data


def test_only_short_readable_videos_are_accepted():
    from reports.services.errors import BadMedia

    with pytest.raises(BadMedia, match="short video"):
        clean_uploads([MediaUpload("long.mp4", mp4(600))])
    with pytest.raises(BadMedia, match="not a readable MP4"):
        clean_uploads([MediaUpload("broken.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(40))])
    with pytest.raises(BadMedia, match="at most"):
        clean_uploads([MediaUpload("a.mp4", mp4(5)), MediaUpload("b.mp4", mp4(5))])


def test_reporter_identity_never_appears_in_public_outputs_logs_or_events(live, staff, caplog, settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    caplog.set_level(logging.DEBUG)
    area = ward()
    lon, lat = inside(area)
    # 1. Filed through Open311 with every identity field, and through the web form.
    created = requests.post(f"{live}/open311/v2/requests.json", data={
        "service_code": "littering", "lat": lat, "long": lon, "description": "Rác tồn đọng đầu hẻm",
        "first_name": "Nguyễn Văn", "last_name": "Bímật", "email": SECRET["email"], "phone": SECRET["phone"],
        "device_id": SECRET["device_id"], "account_id": "acct-Bímật"},
        files={"media": ("a.jpg", photo_with_exif(), "image/jpeg")}, timeout=60)
    assert created.status_code == 200, created.text
    rid = created.json()[0]["service_request_id"]
    web = requests.Session()
    form = web.get(f"{live}/reports/new/", timeout=30)
    assert form.status_code == 200
    posted = web.post(f"{live}/reports/new/", data={
        "csrfmiddlewaretoken": web.cookies["csrftoken"], "category": "lighting", "lon": lon, "lat": lat,
        "description": "Đèn đường hỏng", "name": SECRET["name"], "phone": SECRET["phone"], "email": SECRET["email"],
        "contact": "email"}, headers={"Referer": f"{live}/reports/new/"}, timeout=60)
    assert posted.status_code == 201, posted.text[:500]
    assert_clean("the filing confirmation page", posted.text)
    web_report = Report.objects.filter(category__code="lighting").order_by("-pk").first()
    assert Reporter.objects.get(report=web_report).email == SECRET["email"]   # stored, apart
    # 2. Handled by an operator and the ward's officer through the API.
    op_token, off_token, leader_token = staff
    for action, token, data in (("verify", op_token, {}), ("assign", op_token, {}), ("start", off_token, {}),
                                ("resolve", off_token, {"result": "Đã thu gom rác"})):
        done = requests.post(f"{live}/reports/api/work/{rid}/{action}", json=data,
                             headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert done.status_code == 200, (action, done.text)
        assert_clean(f"action {action}", done.content)
    sent = []
    in_own_thread(lambda: sent.append(send_pending()))   # committed: the clean-up must not wait on our locks
    assert sent[0][0] >= 2
    # 3. Everything public or API-facing, read back over HTTP.
    x, y = tile_of(lon, lat, 16)
    urls = ["/open311/v2/requests.json", "/open311/v2/requests.xml", f"/open311/v2/requests/{rid}.json",
            f"/open311/v2/requests/{rid}.xml", "/reports/", f"/reports/{rid}/", f"/reports/{web_report.pk}/",
            "/reports/feed.geojson", "/reports/feed.atom", "/collections/hue-reports/items?limit=1000",
            f"/collections/hue-reports/items/{rid}", "/collections/hue-reports/export?f=csv",
            "/collections/hue-reports/export?f=geojson", f"/tiles/hue-reports/16/{x}/{y}.mvt"]
    for url in urls:
        response = requests.get(live + url, timeout=60)
        assert response.status_code == 200, (url, response.status_code)
        assert_clean(url, response.content)
    for url, token in (("/api/events?limit=1000", op_token), ("/reports/api/work?status=all", op_token),
                       ("/reports/api/work?status=all", off_token), ("/reports/api/kpis", leader_token)):
        response = requests.get(live + url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert response.status_code == 200, url
        assert_clean(url, response.content)
    # 4. Exports, feature properties, event payloads and live-push messages.
    out = tmp_path / "reports.geojson"
    call_command("export", layer="hue-reports", output=str(out), no_progress=True)
    assert_clean("twin export", out.read_text(encoding="utf-8"))
    from ingestion.live.payloads import event_city, event_message, load_event

    for event in GeoEvent.objects.filter(source_key__in=[f"report:{rid}", f"report:{web_report.pk}"]):
        assert_clean("event payload", json.dumps(event.payload, ensure_ascii=False))
        loaded = load_event(event.pk)
        assert_clean("live event message", json.dumps(event_message(loaded, "created", event_city(loaded)),
                                                      ensure_ascii=False, default=str))
    for feature in Feature.objects.filter(layer__slug="hue-reports"):
        assert_clean("feature properties", json.dumps(feature.properties, ensure_ascii=False))
    # 5. Logs of the whole life (server thread included), and the notification went to the chosen contact only.
    assert_clean("log lines", "\n".join(r.getMessage() for r in caplog.records))
    assert mail.outbox and all(m.to == [SECRET["email"]] for m in mail.outbox)
    assert_clean("log lines after sending", "\n".join(r.getMessage() for r in caplog.records))
