# SPDX-License-Identifier: AGPL-3.0-or-later
"""Open311 GeoReport v2: ``services``, ``services/{code}``, ``requests`` (GET/POST),
``requests/{id}``, ``tokens/{token}`` in JSON and XML, with the common
``page``/``page_size`` extension.

Spec: http://wiki.open311.org/GeoReport_v2/. Errors are the spec's list of
``{code, description}`` with the HTTP status. Filing is anonymous-capable:
``first_name``/``last_name``/``email``/``phone``/``device_id``/``account_id``
go to the confidential reporter record and are never returned. ``media``
(multipart, one or several files) is our upload extension; ``media_url`` is
not fetched (the platform works offline) and is refused.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters

from reports.models import CLOSED_STATUSES, Channel, ContactChannel, Report, ReportCategory
from reports.services.errors import RateLimited
from reports.services.intake import ReportDraft, ReporterInfo, file_report
from reports.services.media import MediaUpload
from reports.services.public import parse_search, public_queryset, public_report
from reports.services.ratelimit import client_of
from reports.uploads import use_one_pass_multipart
from twin.errors import InvalidInput, NotFound, PayloadTooLarge, TwinError

logger = logging.getLogger(__name__)

CONTENT_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
# Element names of list items in XML (the spec's examples).
# GeoReport v2, GET Service Requests: without start_date/end_date the server returns the last 90 days.
DEFAULT_WINDOW = timedelta(days=90)
XML_ITEMS = {"services": "service", "service_requests": "request", "errors": "error", "attributes": "attribute",
             "endpoints": "endpoint", "formats": "format", "keywords": "keyword"}


def _xml(root_name: str, items: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> bytes:
    root = ET.Element(root_name)

    def put(parent: ET.Element, key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            child = ET.SubElement(parent, key)
            for k, v in value.items():
                put(child, k, v)
        elif isinstance(value, list):
            child = ET.SubElement(parent, key)
            for item in value:
                put(child, XML_ITEMS.get(key, "item"), item)
        else:
            ET.SubElement(parent, key).text = "" if value is None else (
                str(value).lower() if isinstance(value, bool) else str(value))

    if isinstance(items, Mapping):
        for k, v in items.items():
            put(root, k, v)
    else:
        for item in items:
            put(root, XML_ITEMS[root_name], item)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(root, encoding="utf-8")


def respond(fmt: str, root: str, body: Any, status: int = 200, headers: Mapping[str, str] | None = None
            ) -> HttpResponse:
    data = _xml(root, body) if fmt == "xml" else json.dumps(body, ensure_ascii=False).encode()
    response = HttpResponse(data, status=status, content_type=CONTENT_TYPES[fmt])
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def open311_view(methods: tuple[str, ...] = ("GET",)):
    """Method check and one place turning :class:`TwinError` into Open311 errors."""
    def decorate(func):
        @csrf_exempt   # public API: no session is used, so there is nothing to forge
        @sensitive_post_parameters("first_name", "last_name", "email", "phone", "device_id", "account_id")
        def wrapper(request: HttpRequest, fmt: str, **kwargs):
            try:
                if request.method not in (*methods, "HEAD" if "GET" in methods else "GET"):
                    return respond(fmt, "errors", [{"code": 405, "description": f"use {', '.join(methods)}"}], 405,
                                   {"Allow": ", ".join(methods)})
                return func(request, fmt, **kwargs)
            except TwinError as exc:
                logger.info("open311 %s %s -> %s %s: %s", request.method, request.path, int(exc.status), exc.code,
                            exc.message)
                headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
                return respond(fmt, "errors", [{"code": int(exc.status), "description": exc.message}],
                               int(exc.status), headers)
            except Exception:
                logger.exception("open311 %s %s failed", request.method, request.path)
                return respond(fmt, "errors", [{"code": 500, "description": "internal error; it has been logged"}],
                               500)
        return wrapper
    return decorate


def _service(category: ReportCategory, lang: str) -> dict[str, Any]:
    return {"service_code": category.code,
            "service_name": category.name_en if lang == "en" else category.name_vi,
            "description": f"{category.name_vi} / {category.name_en}. "
                           f"Thời hạn xử lý / handling deadline: {category.deadline_hours} h",
            "metadata": False, "type": "realtime", "keywords": ", ".join(category.keywords), "group": category.group}


@open311_view()
def discovery(request: HttpRequest, fmt: str) -> HttpResponse:
    base = request.build_absolute_uri("/open311/v2/")
    return respond(fmt, "discovery", {
        "changeset": "2025-07-01T00:00:00Z", "contact": "IOC hotline 1022",
        "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": base, "type": "production",
                       "formats": ["application/json", "text/xml"]}]})


@open311_view()
def services(request: HttpRequest, fmt: str) -> HttpResponse:
    lang = request.GET.get("lang", "vi")
    return respond(fmt, "services", [_service(c, lang) for c in ReportCategory.objects.filter(active=True)])


@open311_view()
def service_definition(request: HttpRequest, fmt: str, code: str) -> HttpResponse:
    if not ReportCategory.objects.filter(code=code, active=True).exists():
        raise NotFound(f"no service {code!r}")
    # No extra attributes: every category is filed with the same fields.
    return respond(fmt, "service_definition", {"service_code": code, "attributes": []})


def open311_request(report: Report, absolute) -> dict[str, Any]:
    public = public_report(report, absolute)
    return {
        "service_request_id": report.pk, "status": "closed" if report.status in CLOSED_STATUSES else "open",
        "detailed_status": report.status, "status_notes": public["result"],
        "service_name": report.category.name_vi, "service_code": report.category.code,
        "description": report.description, "agency_responsible": public["agency_name"] or "",
        "service_notice": "", "requested_datetime": public["reported_at"], "updated_datetime": public["updated_at"],
        "expected_datetime": public["due_at"], "address": report.address, "address_id": "", "zipcode": "",
        "lat": public["lat"], "long": public["lon"], "ward": public["ward"] or "",
        "media_url": public["photos"][0] if public["photos"] else "",
    }


@open311_view(methods=("GET", "POST"))
def requests(request: HttpRequest, fmt: str) -> HttpResponse:
    if request.method == "POST":
        return _post_request(request, fmt)
    search = parse_search(request.GET, default_window=DEFAULT_WINDOW)
    query = search.apply(public_queryset()).order_by("-reported_at", "-id")
    rows = [open311_request(r, request.build_absolute_uri) for r in search.page_slice(query)]
    return respond(fmt, "service_requests", rows)


@open311_view()
def request_detail(request: HttpRequest, fmt: str, request_id: str) -> HttpResponse:
    report = public_queryset().filter(pk=int(request_id)).first()
    if report is None:
        raise NotFound(f"no service request {request_id}")
    return respond(fmt, "service_requests", [open311_request(report, request.build_absolute_uri)])


@open311_view()
def token(request: HttpRequest, fmt: str, token: str) -> HttpResponse:
    try:
        report = Report.objects.filter(token=token).only("id", "token").first()
    except Exception:  # a malformed UUID
        raise InvalidInput("malformed token") from None
    if report is None:
        raise NotFound("unknown token")
    return respond(fmt, "service_requests", [{"service_request_id": report.pk, "token": str(report.token)}])


def _post_request(request: HttpRequest, fmt: str) -> HttpResponse:
    use_one_pass_multipart(request)   # before POST/FILES: a third of the CPU of Django's parser (reports.uploads)
    data = request.POST
    if data.get("media_url"):
        raise InvalidInput("media_url is not fetched by this server; upload the file as 'media' (multipart)")
    uploads = tuple(MediaUpload(name=f.name, data=_read(f)) for f in request.FILES.getlist("media"))
    name = " ".join(p for p in (data.get("first_name", "").strip(), data.get("last_name", "").strip()) if p)
    email, phone = data.get("email", "").strip(), data.get("phone", "").strip()
    contact = data.get("contact") or (ContactChannel.EMAIL if email else ContactChannel.NONE)
    draft = ReportDraft(
        category=data.get("service_code", ""), lat=data.get("lat"), lon=data.get("long"),
        description=data.get("description", ""), address=data.get("address_string", ""), channel=Channel.APP,
        reporter=ReporterInfo(name=name, phone=phone, email=email, device_id=data.get("device_id", ""),
                              account_id=data.get("account_id", ""), contact=contact),
        media=uploads, client=data.get("api_key") or client_of(request.META), actor_label="open311")
    filed = file_report(draft)
    notice = "Đã tiếp nhận / Received"
    if filed.duplicates:
        ids = ", ".join(f"#{d.pk}" for d in filed.duplicates)
        notice += f". Có thể trùng với / possibly the same as {ids} (≤ 50 m, same category, open)"
    return respond(fmt, "service_requests", [{"service_request_id": filed.report.pk, "token": str(filed.report.token),
                                              "service_notice": notice, "account_id": None}])


def _read(upload) -> bytes:
    limit = max(getattr(settings, "REPORTS_MAX_VIDEO_BYTES", 20 * 1024 * 1024),
                getattr(settings, "REPORTS_MAX_PHOTO_BYTES", 8 * 1024 * 1024))
    if upload.size > limit:
        raise PayloadTooLarge(f"{upload.name!r} is larger than {limit // (1024 * 1024)} MiB")
    return upload.read()
