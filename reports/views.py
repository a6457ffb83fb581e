# SPDX-License-Identifier: AGPL-3.0-or-later
"""Pages and JSON endpoints of citizen reports. Thin: parse, check the role, call a service, render.

Public (no login): the citizen form, the results page, feeds, photos.
Staff (session or API token): the hotline operator form, the work queue,
workflow actions, KPIs.
"""
from __future__ import annotations

import json
import logging
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import feedgenerator
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from reports.models import ContactChannel, Report, ReportCategory, ReportMedia, ReportStatus
from reports.services import kpis, workflow
from reports.services.errors import MissingLocation, RateLimited
from reports.services.intake import ReportDraft, ReporterInfo, city_for, file_report, find_duplicates
from reports.services.media import MediaUpload, limits
from reports.services.public import parse_search, public_queryset, public_report
from reports.services.ratelimit import client_of
from reports.uploads import use_one_pass_multipart
from twin.auth import json_api, requires
from twin.errors import InvalidInput, NotFound, PayloadTooLarge, TwinError
from twin.models import AdminArea, AdminLevel
from twin.roles import Capability, has_capability
from twin.services import make_point

logger = logging.getLogger(__name__)

# Reporter fields are masked in Django's error reports (DEBUG pages, mail_admins) as well.
REPORTER_FIELDS = ("name", "phone", "email", "first_name", "last_name", "device_id", "account_id")


# --- helpers ------------------------------------------------------------------------------------

def _uploads(request: HttpRequest, field: str = "media") -> tuple[MediaUpload, ...]:
    cap = max(limits()["photo_bytes"], limits()["video_bytes"])
    files = request.FILES.getlist(field)
    for f in files:
        if f.size > cap:
            raise PayloadTooLarge(f"{f.name!r} is larger than {cap // (1024 * 1024)} MiB / tệp quá lớn")
    return tuple(MediaUpload(name=f.name, data=f.read()) for f in files)


def _city_context(request: HttpRequest) -> dict:
    city = city_for(None)
    ward_layer = (AdminArea.objects.filter(level=AdminLevel.WARD, parent=city.province, feature__isnull=False)
                  .values_list("feature__layer__slug", flat=True).first())
    center = city.center or city.extent.centroid
    return {"city": city, "center": [center.x, center.y], "zoom": city.default_zoom,
            "wards_url": f"/collections/{ward_layer}/items?limit=200" if ward_layer else "",
            "categories": ReportCategory.objects.filter(active=True),
            "wards": AdminArea.objects.filter(level=AdminLevel.WARD, parent=city.province).order_by("name_vi"),
            "limits": {k: v // (1024 * 1024) if k.endswith("bytes") else v for k, v in limits().items()},
            "contacts": ContactChannel.choices}


def staff_page(capabilities: tuple[Capability, ...]):
    """HTML pages for staff: log in through the admin; 403 when no listed capability."""
    def decorate(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            if not any(has_capability(request.user, c) for c in capabilities):
                return render(request, "reports/error.html", {"message": "Vai trò của bạn không được phép. / "
                              "Your role does not allow this."}, status=403)
            return view(request, *args, **kwargs)
        return wrapper
    return decorate


# --- citizen and operator intake ----------------------------------------------------------------

def _draft_from_form(request: HttpRequest, *, channel: str, actor: str, client: str | None) -> ReportDraft:
    post = request.POST
    anonymous = post.get("anonymous") == "on"
    reporter = ReporterInfo() if anonymous else ReporterInfo(
        name=post.get("name", ""), phone=post.get("phone", ""), email=post.get("email", ""),
        contact=post.get("contact", ContactChannel.NONE))
    return ReportDraft(category=post.get("category", ""), lon=post.get("lon") or None, lat=post.get("lat") or None,
                       description=post.get("description", ""), address=post.get("address", ""), channel=channel,
                       reporter=reporter, media=_uploads(request), client=client, actor_label=actor)


@csrf_exempt   # checked by _citizen_form once the parser is chosen: Django's pattern for per-view upload handlers
@sensitive_post_parameters(*REPORTER_FIELDS)
@require_http_methods(["GET", "POST"])
def citizen_form(request: HttpRequest) -> HttpResponse:
    """The citizen's form: Vietnamese first, mobile-friendly, place from the map or the phone.

    The CSRF middleware reads ``request.POST`` before a protected view runs, so
    the view is exempt and :func:`_citizen_form` is protected instead: by then
    the one-pass multipart parser (:mod:`reports.uploads`) is in place.
    """
    use_one_pass_multipart(request)
    return _citizen_form(request)


@csrf_protect
def _citizen_form(request: HttpRequest) -> HttpResponse:
    context = _city_context(request)
    if request.method == "GET":
        return render(request, "reports/citizen_form.html", context)
    try:
        filed = file_report(_draft_from_form(request, channel="web", actor="citizen",
                                             client=client_of(request.META)))
    except TwinError as exc:
        status = int(exc.status)
        response = render(request, "reports/citizen_form.html",
                          {**context, "error": exc.message, "error_code": exc.code, "values": request.POST},
                          status=status)
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response
    return render(request, "reports/filed.html", {"report": filed.report, "duplicates": filed.duplicates},
                  status=201)


@staff_page((Capability.HANDLE_EVENTS,))
@sensitive_post_parameters(*REPORTER_FIELDS)
@require_http_methods(["GET", "POST"])
def operator_form(request: HttpRequest) -> HttpResponse:
    """Hotline 1022: the operator files what a caller reports, and may link a duplicate at once."""
    context = {**_city_context(request), "operator": True}
    if request.method == "GET":
        return render(request, "reports/citizen_form.html", context)
    try:
        filed = file_report(_draft_from_form(request, channel="hotline", actor=request.user.get_username(),
                                             client=None))
        duplicate_of = request.POST.get("duplicate_of", "").strip()
        if duplicate_of:
            if not duplicate_of.isdigit():
                raise InvalidInput("duplicate_of must be a report number")
            workflow.link_duplicate(filed.report.pk, int(duplicate_of), workflow.Actor(user=request.user))
    except TwinError as exc:
        return render(request, "reports/citizen_form.html",
                      {**context, "error": exc.message, "values": request.POST}, status=int(exc.status))
    return redirect("reports:work-detail", report_id=filed.report.pk)


@json_api
def duplicates_api(request: HttpRequest) -> JsonResponse:
    """Open reports of a category within 50 m of a place: offered to the citizen before filing."""
    category = ReportCategory.objects.filter(code=request.GET.get("category", "")).first()
    if category is None:
        raise InvalidInput("unknown or missing category")
    if not request.GET.get("lon") or not request.GET.get("lat"):
        raise MissingLocation("lon and lat are required")
    point = make_point(request.GET["lon"], request.GET["lat"])
    return JsonResponse({"duplicates": [public_report(r, request.build_absolute_uri)
                                        for r in find_duplicates(category, point)]})


# --- public results -----------------------------------------------------------------------------

def _search_or_400(request: HttpRequest, page_size: int = 50):
    return parse_search(request.GET, default_page_size=page_size)


def public_list(request: HttpRequest) -> HttpResponse:
    context = _city_context(request)
    try:
        search = _search_or_400(request)
    except TwinError as exc:
        return render(request, "reports/error.html", {"message": exc.message}, status=int(exc.status))
    query = search.apply(public_queryset())
    rows = [public_report(r) for r in search.page_slice(query)]
    params = {k: v for k, v in request.GET.items() if k in ("ward", "category", "status") and v}
    feed = reverse("reports:feed") + ("?" + urlencode(params) if params else "")
    more = len(rows) == search.page_size
    return render(request, "reports/public_list.html", {
        **context, "rows": rows, "search": search, "feed_url": feed, "params": params,
        "next_page": urlencode({**params, "page": search.page + 1}) if more else None,
        "prev_page": urlencode({**params, "page": search.page - 1}) if search.page > 1 else None,
        "statuses": ReportStatus.choices})


@json_api
def public_feed(request: HttpRequest) -> JsonResponse:
    """GeoJSON of public reports (same filters as the page, ``page``/``page_size`` up to 1000)."""
    search = _search_or_400(request, page_size=500)
    rows = [public_report(r, request.build_absolute_uri) for r in search.page_slice(search.apply(public_queryset()))]
    features = [{"type": "Feature", "id": r["id"], "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                 "properties": r} for r in rows]
    return JsonResponse({"type": "FeatureCollection", "features": features, "numberReturned": len(features)},
                        content_type="application/geo+json", json_dumps_params={"ensure_ascii": False})


def public_atom(request: HttpRequest) -> HttpResponse:
    try:
        search = _search_or_400(request)
    except TwinError as exc:
        return HttpResponse(exc.message, status=int(exc.status), content_type="text/plain; charset=utf-8")
    feed = feedgenerator.Atom1Feed(title="Phản ánh hiện trường / Citizen reports",
                                   link=request.build_absolute_uri(reverse("reports:public")),
                                   description="Kết quả xử lý phản ánh / outcome of citizen reports", language="vi")
    for report in search.page_slice(search.apply(public_queryset()).order_by("-updated_at", "-id")):
        r = public_report(report)
        feed.add_item(title=f"#{r['id']} {r['category_name']} — {report.get_status_display()}",
                      link=request.build_absolute_uri(reverse("reports:public-detail", args=[r["id"]])),
                      description=" ".join(x for x in (r["description"], r["agency_name"] or "", r["result"]) if x),
                      updateddate=report.updated_at, pubdate=report.reported_at, unique_id=f"report-{r['id']}")
    return HttpResponse(feed.writeString("utf-8"), content_type="application/atom+xml; charset=utf-8")


def public_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    report = public_queryset().filter(pk=report_id).first()
    if report is None:
        raise Http404("no such report")
    steps = report.steps.exclude(action="route").values("action", "to_status", "at")
    return render(request, "reports/public_detail.html", {**_city_context(request), "r": public_report(report),
                                                           "report": report, "steps": steps})


def media(request: HttpRequest, media_id: int) -> HttpResponse:
    item = ReportMedia.objects.filter(pk=media_id).only("content_type", "data", "sha256").first()
    if item is None:
        raise Http404("no such photo")
    try:
        body = item.content()
    except FileNotFoundError:
        logger.error("media %s: its file %s is missing from REPORTS_MEDIA_DIR", media_id, item.sha256)
        raise Http404("no such photo") from None
    response = HttpResponse(body, content_type=item.content_type)
    response["Cache-Control"] = "public, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- KPIs ---------------------------------------------------------------------------------------

def _kpi_query(request: HttpRequest) -> kpis.KpiQuery:
    search = parse_search({k: request.GET.get(k) for k in ("start_date", "end_date")})
    return kpis.KpiQuery(start=search.start, end=search.end)


@json_api
@requires(Capability.READ_KPIS)
def kpi_api(request: HttpRequest) -> JsonResponse:
    return JsonResponse(kpis.compute(_kpi_query(request)), json_dumps_params={"ensure_ascii": False})


@staff_page((Capability.READ_KPIS,))
def kpi_page(request: HttpRequest) -> HttpResponse:
    try:
        data = kpis.compute(_kpi_query(request))
    except TwinError as exc:
        return render(request, "reports/error.html", {"message": exc.message}, status=int(exc.status))
    titles = [("by_ward", "Phường, xã / Ward"), ("by_agency", "Cơ quan / Agency"),
              ("by_category", "Lĩnh vực / Category"), ("by_month", "Tháng / Month")]
    return render(request, "reports/kpis.html", {"k": data, "dimensions": [(t, data[key]) for key, t in titles]})


# --- work queue and actions (operators, agency officers) ----------------------------------------

def _work_row(report: Report) -> dict:
    return {**public_report(report), "routing": report.routing, "status_label": report.get_status_display()}


@json_api
def work_api(request: HttpRequest) -> JsonResponse:
    query = workflow.visible_reports(request.user)
    status = request.GET.get("status", "open")
    search = parse_search({**request.GET.dict(), "status": status if status != "all" else ""})
    rows = [_work_row(r) for r in search.page_slice(search.apply(query.prefetch_related("media")))]
    return JsonResponse({"reports": rows, "page": search.page, "page_size": search.page_size},
                        json_dumps_params={"ensure_ascii": False})


def _action_args(action: str, data: dict, request: HttpRequest) -> dict:
    if action in ("reroute", "assign"):
        return {"agency_code": data.get("agency", ""), **({"reason": data.get("reason", "")} if action == "reroute"
                                                          else {"note": data.get("note", "")})}
    if action in ("route_again", "reject"):
        return {"reason": data.get("reason", "")}
    if action == "resolve":
        return {"result": data.get("result", ""), "photos": _uploads(request, "photos")}
    if action == "link_duplicate":
        original = str(data.get("original", "")).strip()
        if not original.isdigit():
            raise InvalidInput("original must be a report number")
        return {"original_id": int(original)}
    return {"note": data.get("note", "")}


def run_action(request: HttpRequest, report_id: int, action: str, data: dict) -> Report:
    func = workflow.ACTIONS.get(action)
    if func is None:
        raise NotFound(f"unknown action {action!r}; one of {', '.join(workflow.ACTIONS)}")
    workflow.visible_reports(request.user)  # 401/403 before anything else
    return func(report_id, actor=workflow.Actor(user=request.user), **_action_args(action, data, request))


@json_api(methods=("POST",))
def action_api(request: HttpRequest, report_id: int, action: str) -> JsonResponse:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            raise InvalidInput("the body is not JSON") from None
        if not isinstance(data, dict):
            raise InvalidInput("the body must be a JSON object")
    else:
        data = request.POST.dict()
    report = run_action(request, report_id, action, data)
    return JsonResponse(_work_row(Report.objects.select_related("category", "ward", "agency").get(pk=report.pk)),
                        json_dumps_params={"ensure_ascii": False})


@staff_page((Capability.HANDLE_EVENTS, Capability.PROCESS_REPORTS))
def work_queue(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "open")
    try:
        search = parse_search({**request.GET.dict(), "status": status if status != "all" else ""}, default_page_size=100)
    except TwinError as exc:
        return render(request, "reports/error.html", {"message": exc.message}, status=int(exc.status))
    query = search.apply(workflow.visible_reports(request.user).prefetch_related("media")).order_by("due_at", "id")
    return render(request, "reports/work_list.html", {
        "rows": [(r, _work_row(r)) for r in search.page_slice(query)], "status": status,
        "operator": has_capability(request.user, Capability.HANDLE_EVENTS)})


@staff_page((Capability.HANDLE_EVENTS, Capability.PROCESS_REPORTS))
@require_http_methods(["GET", "POST"])
def work_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    report = workflow.visible_reports(request.user).filter(pk=report_id).first()
    if report is None:
        raise Http404("no such report in your queue")
    error = None
    if request.method == "POST":
        try:
            run_action(request, report_id, request.POST.get("action", ""), request.POST.dict())
            return redirect("reports:work-detail", report_id=report_id)
        except TwinError as exc:
            error = exc.message
    from twin.models import Agency

    return render(request, "reports/work_detail.html", {
        "report": report, "r": _work_row(report), "steps": report.steps.all(), "error": error,
        "duplicates": find_duplicates(report.category, report.geom, exclude=report.pk),
        "operator": has_capability(request.user, Capability.HANDLE_EVENTS),
        "agencies": Agency.objects.order_by("code").only("code", "name_vi"),
        "result_media": report.media.filter(stage="result")}, status=400 if error else 200)

