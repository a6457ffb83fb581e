# SPDX-License-Identifier: AGPL-3.0-or-later
"""The one-pass multipart parser gives what Django's parser gives, or lets Django's parser answer.

Every body is parsed twice, by ``reports.uploads`` (through Django's
``MultiPartParser``, as a request does) and by Django's parser with its
default handlers, and the outcomes are compared: the POST values, each
file's name, type, charset, size and bytes, or the exception raised.
"""
from __future__ import annotations

import io
import random

import pytest
from django.core.files.uploadedfile import InMemoryUploadedFile, SimpleUploadedFile, TemporaryUploadedFile
from django.core.files.uploadhandler import load_handler
from django.core.handlers.wsgi import LimitedStream
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from reports import uploads
from reports.models import Report, ReportMedia
from reports.uploads import OnePassMultipartHandler
from tests.reports.test_forms import counts, form_data
from tests.reports.test_media_jpeg import jpeg, secret_exif

# The app's session fixtures load categories into the test database, so every test here takes it.
pytestmark = pytest.mark.django_db

PHOTO = jpeg(size=(320, 240), exif=secret_exif())   # ~100 KiB of noise: above the limits the tests set
parse = uploads.parse_multipart


def default_handlers():
    from django.conf import settings

    return [load_handler(path) for path in settings.FILE_UPLOAD_HANDLERS]


def outcome(body: bytes, content_type: str = MULTIPART_CONTENT, one_pass: bool = True, length: int | None = None):
    """What parsing gives, in comparable form: ("ok", POST lists, FILES) or ("error", exception class name)."""
    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body) if length is None else length)}
    handlers = default_handlers()
    if one_pass:
        handlers = [OnePassMultipartHandler(fallback=handlers), *handlers]
    try:
        stream = LimitedStream(io.BytesIO(body), int(meta["CONTENT_LENGTH"]))
        post, files = MultiPartParser(meta, stream, handlers, "utf-8").parse()
    except Exception as exc:  # compared, not hidden
        return "error", type(exc).__name__
    return "ok", sorted(post.lists()), sorted(
        (key, [(type(f).__name__, f.name, f.content_type, f.charset, f.content_type_extra, f.size, f.read())
               for f in items]) for key, items in files.lists())


def assert_same(body: bytes, **kwargs) -> tuple:
    fast = outcome(body, **kwargs)
    assert fast == outcome(body, one_pass=False, **kwargs)
    return fast


def part(name: str, value: bytes, filename: str | None = None, extra: bytes = b"", boundary=BOUNDARY) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    return (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode() + extra + b"\r\n" + value + b"\r\n")


def body_of(*parts: bytes, boundary=BOUNDARY) -> bytes:
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_a_filing_body_parses_as_django_parses_it_and_in_one_pass(monkeypatch):
    taken = []
    monkeypatch.setattr(uploads, "parse_multipart", lambda *a: taken.append(1) or parse(*a))
    body = encode_multipart(BOUNDARY, {
        "service_code": "littering", "lat": "16.46", "long": "107.59", "description": "Rác tồn đọng ở hẻm 5\r\n2 dòng",
        "first_name": ["Lan", "Hoa"], "media": [SimpleUploadedFile("ảnh 1.jpg", PHOTO, "image/jpeg"),
                                               SimpleUploadedFile("p.png", b"\x89PNG", "image/png")]})
    kind, post, files = assert_same(body)
    assert taken and kind == "ok" and dict(post)["first_name"] == ["Lan", "Hoa"]
    [(key, [first, second])] = files
    assert key == "media" and first[:3] == ("InMemoryUploadedFile", "ảnh 1.jpg", "image/jpeg") and first[-1] == PHOTO



@pytest.mark.parametrize("body", [
    # file names: paths, entities, non-printable characters, RFC 2231, empty (a field then), only dots
    body_of(part("media", PHOTO[:300], r"C:\Users\lan\..\p.jpg"), part("media", b"x", "../../etc/passwd")),
    body_of(part("media", b"x", "&lt;b&gt;.jpg"), part("media", b"y", "a\tb.jpg"), part("m", b"z", "..")),
    body_of(part("media", b"x", "", extra=b"Content-Type: image/jpeg\r\n")),
    (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"media\"; filename*=UTF-8''%E1%BA%A2nh.jpg\r\n\r\n"
     f"x\r\n--{BOUNDARY}--\r\n").encode(),
    # content types with parameters, odd header case and spacing, an undecodable header line, a header without ':'
    body_of(part("f", b"v", "a.txt", extra=b"Content-Type: text/plain; charset=latin-1; x=y\r\n")),
    body_of(part("f", b"v", extra=b"CONTENT-TYPE:   Text/Plain\r\nX-Junk: \xff\xfe\r\nno colon here\r\n")),
    # values: non-UTF-8 bytes, CR or LF at the end, empty, the boundary's text without its dashes
    body_of(part("a", b"\xff\xfe\xfd"), part("b", b"line\r"), part("c", b""), part("d", BOUNDARY.encode())),
    # shapes left to Django: LF line ends, a preamble, a part without a name, base64, no closing boundary, epilogue
    body_of(part("a", b"1")).replace(b"\r\n", b"\n"),
    b"preamble\r\n" + body_of(part("a", b"1")),
    body_of(f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nv\r\n".encode(), part("a", b"1")),
    body_of(part("a", b"MTIz", extra=b"Content-Transfer-Encoding: base64\r\n")),
    part("a", b"1"),
    body_of(part("a", b"1")) + b"epilogue",
    body_of(part("a", b"x--" + BOUNDARY.encode() + b"y")),
    body_of(part("a", b"1", extra=b"X-Long: " + b"h" * 1100 + b"\r\n")),
    b"",
], ids=["paths", "entities", "empty-filename", "rfc2231", "params", "odd-headers", "values", "lf", "preamble",
        "no-name", "base64", "unclosed", "epilogue", "boundary-in-value", "long-header", "empty"])
def test_unusual_bodies_give_what_django_gives(body):
    assert_same(body)


@pytest.mark.parametrize("limit, fields, expected", [
    ({"DATA_UPLOAD_MAX_NUMBER_FIELDS": 3}, 3, "ok"), ({"DATA_UPLOAD_MAX_NUMBER_FIELDS": 3}, 4, "error"),
    ({"DATA_UPLOAD_MAX_MEMORY_SIZE": 40}, 3, "ok"), ({"DATA_UPLOAD_MAX_MEMORY_SIZE": 40}, 4, "error"),
    ({"DATA_UPLOAD_MAX_NUMBER_FILES": 2}, 2, "ok"), ({"DATA_UPLOAD_MAX_NUMBER_FILES": 2}, 3, "error"),
])
def test_djangos_field_and_file_limits_hold_at_the_same_counts(settings, limit, fields, expected):
    for key, value in limit.items():
        setattr(settings, key, value)
    files = "FILES" in next(iter(limit))
    body = body_of(*(part(f"k{i}", b"1234567", f"f{i}.jpg" if files else None) for i in range(fields)))
    assert assert_same(body)[0] == expected


def test_a_body_above_the_memory_limit_streams_through_djangos_parser_to_a_temporary_file(settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = body_of(part("a", b"1"), part("media", PHOTO, "p.jpg"))
    kind, _post, [(key, [photo])] = assert_same(body)
    assert photo[0] == TemporaryUploadedFile.__name__ and photo[-1] == PHOTO


def test_a_body_shorter_than_its_content_length_gives_what_django_gives():
    body = body_of(part("a", b"1"), part("media", PHOTO, "p.jpg"))
    assert_same(body[:len(body) // 2], length=len(body))


def test_damaged_bodies_give_what_django_gives():
    """Bytes cut, doubled or changed near the structure (boundaries, CRLFs, headers) of a filing body."""
    body = encode_multipart(BOUNDARY, {"lat": "16.4", "description": "Rác", "media": SimpleUploadedFile(
        "p.jpg", PHOTO[:2000], "image/jpeg")})
    marks = [i for i in range(len(body) - 1) if body[i:i + 2] in (b"\r\n", b"--", b'="', b"; ")]
    rng = random.Random(7)
    for _ in range(400):
        i = rng.choice(marks) + rng.randrange(-3, 4)
        damaged = rng.choice([body[:i] + body[i + 1:], body[:i] + body[i:i + 2] + body[i:],
                              body[:i] + bytes([rng.randrange(256)]) + body[i + 1:]])
        assert_same(damaged)


def test_open311_filing_with_a_photo_goes_through_the_one_pass_parser(client, hue, monkeypatch):
    taken = []
    monkeypatch.setattr(uploads, "parse_multipart", lambda *a: taken.append(1) or parse(*a))
    data = form_data()
    response = client.post("/open311/v2/requests.json", {
        "service_code": data["category"], "lat": data["lat"], "long": data["lon"], "description": "Rác",
        "media": SimpleUploadedFile("p.jpg", PHOTO, "image/jpeg")})
    assert response.status_code == 200, response.content
    assert taken and ReportMedia.objects.filter(report_id=response.json()[0]["service_request_id"]).count() == 1


@pytest.mark.parametrize("memory_limit", [None, 10_000], ids=["one-pass", "django-parser"])
def test_an_oversized_photo_is_still_refused_with_nothing_stored(client, hue, settings, memory_limit):
    settings.REPORTS_MAX_PHOTO_BYTES = 2000
    if memory_limit:
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = memory_limit
    before = counts()
    data = form_data()
    response = client.post("/open311/v2/requests.json", {
        "service_code": data["category"], "lat": data["lat"], "long": data["lon"],
        "media": SimpleUploadedFile("big.jpg", PHOTO, "image/jpeg")})
    assert response.status_code == 413 and "limit" in response.json()[0]["description"]
    response = client.post(reverse("reports:new"), {**data, "media": [SimpleUploadedFile("big.jpg", PHOTO)]})
    assert response.status_code == 413 and "limit" in response.content.decode()
    assert counts() == before


def test_the_citizen_form_still_needs_its_csrf_token(hue):
    browser = Client(enforce_csrf_checks=True)
    before = Report.objects.count()
    data = {**form_data(), "media": [SimpleUploadedFile("p.jpg", PHOTO, "image/jpeg")]}
    assert browser.post(reverse("reports:new"), data).status_code == 403
    assert Report.objects.count() == before
    browser.get(reverse("reports:new"))
    token = browser.cookies["csrftoken"].value
    data["media"] = [SimpleUploadedFile("p.jpg", PHOTO, "image/jpeg")]
    response = browser.post(reverse("reports:new"), {**data, "csrfmiddlewaretoken": token})
    assert response.status_code == 201 and Report.objects.count() == before + 1


def test_uploaded_files_are_djangos_in_memory_files():
    body = body_of(part("media", b"abc", "a.jpg", extra=b"Content-Type: image/jpeg\r\n"))
    post, files = parse(body, BOUNDARY.encode(), "utf-8")
    [upload] = files.getlist("media")
    assert isinstance(upload, InMemoryUploadedFile) and not post._mutable and upload.read() == b"abc"
