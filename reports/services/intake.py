# SPDX-License-Identifier: AGPL-3.0-or-later
"""Filing a report: check everything first, then write it whole in one transaction.

Order: rate limit (counted on its own) → text, category, place, media
checked with nothing written (:func:`prepare`, in the caller's thread) →
route (ingestion.routing chain, one candidates query per batch) and refuse
places outside the city → one transaction, shared with concurrent filings (:mod:`reports.services.filing`,
:mod:`reports.services.batcher`): report, reporter (if not anonymous), media,
``file`` and ``route`` steps, the feature in the reports layer, the
geo-event, the citizen's first notification.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.conf import settings
from django.db import connection
from django.utils import timezone

from reports.models import OPEN_STATUSES, Channel, ContactChannel, Report, ReportCategory, ReportMedia
from reports.services import media_store
from reports.services.errors import MissingLocation, OutsideCity
from reports.services.media import CleanMedia, MediaUpload, clean_uploads
from reports.services.batcher import batcher
from reports.services.filing import ROUTES, Prepared, file_batch, log_filed
from reports.services.ratelimit import check_and_count
from reports.services.text import clean_text
from twin.errors import InvalidInput, NotFound, TwinError
from twin.models import City
from twin.services import make_point


DUPLICATE_RADIUS_M = 50
PHONE_CHARS = set("0123456789+ .-()")


@dataclass(frozen=True, slots=True)
class ReporterInfo:
    """Confidential: stored in :class:`Reporter` only."""

    name: str = ""
    phone: str = ""
    email: str = ""
    device_id: str = ""
    account_id: str = ""
    contact: str = ContactChannel.NONE

    @property
    def is_anonymous(self) -> bool:
        return not any((self.name, self.phone, self.email, self.device_id, self.account_id))


@dataclass(frozen=True, slots=True)
class ReportDraft:
    category: str
    lon: float | str | None
    lat: float | str | None
    description: str = ""
    address: str = ""
    channel: str = Channel.WEB
    reporter: ReporterInfo = field(default_factory=ReporterInfo)
    media: tuple[MediaUpload, ...] = ()
    reported_at: datetime | None = None
    city_slug: str | None = None
    client: str | None = None          # for the rate limit; never stored in clear
    actor_label: str = "citizen"       # who filed: citizen, open311, operator username


@dataclass(frozen=True, slots=True)
class Filed:
    report: Report
    duplicates: list[Report]


def _category(code: str) -> ReportCategory:
    code = (code or "").strip()
    category = ROUTES.lookup("category", code,
                             lambda: ReportCategory.objects.filter(code=code, active=True).first()) if code else None
    if category is None:
        raise InvalidInput(f"unknown category {code!r}; see /open311/v2/services.json for the list",
                           ) if code else InvalidInput("a category (service_code) is required")
    return category


def _point(draft: ReportDraft) -> Point:
    if draft.lon in (None, "") or draft.lat in (None, ""):
        raise MissingLocation("the place is missing: pick it on the map or share your location "
                              "/ thiếu vị trí: chọn trên bản đồ hoặc dùng vị trí điện thoại")
    return make_point(draft.lon, draft.lat)


def _reporter(info: ReporterInfo) -> ReporterInfo:
    name = clean_text(info.name, field="name", max_length=200)
    phone = (info.phone or "").strip()
    if phone and (not set(phone) <= PHONE_CHARS or len(phone) > 30):
        raise InvalidInput("phone: digits, spaces and + . - ( ) only")
    email = (info.email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise InvalidInput("email is not a valid address") from None
    contact = info.contact if info.contact in ContactChannel.values else ContactChannel.NONE
    if contact == ContactChannel.EMAIL and not email:
        raise InvalidInput("notifications by email need an email address")
    if contact == ContactChannel.SMS and not phone:
        raise InvalidInput("notifications by SMS need a phone number")
    return ReporterInfo(name=name, phone=phone, email=email, contact=contact,
                        device_id=clean_text(info.device_id, field="device_id", max_length=200),
                        account_id=clean_text(info.account_id, field="account_id", max_length=200))


def city_for(slug: str | None) -> City:
    from django.conf import settings

    slug = slug or settings.DEFAULT_CITY
    # The province's outline is large (57 ms of PostgreSQL per load, measured) and filing needs only its id and code.
    city = ROUTES.lookup("city", slug, lambda: City.objects.select_related("province").defer("province__geom")
                         .filter(slug=slug).first())
    if city is None:
        raise NotFound(f"no city {slug or settings.DEFAULT_CITY!r} is loaded")
    return city


def check_inside(city: City, point: Point, route) -> None:
    """Refuse a place outside the city: no ward of its province (or outside its extent)."""
    if city.province_id is not None:
        inside = route.ward is not None and route.ward.parent_id == city.province_id
    else:
        inside = city.extent.covers(point)
    if not inside:
        raise OutsideCity(f"this place ({point.y:.5f}, {point.x:.5f}) is outside {city.name_vi}; reports are "
                          f"accepted only inside the city / vị trí nằm ngoài {city.name_vi}")


_DUPLICATES_SQL = """
SELECT id FROM reports_report
 WHERE category_id = %s AND status = ANY(%s) AND id <> %s
   AND ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)
 ORDER BY ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography), id
 LIMIT 10
"""


def find_duplicates(category: ReportCategory, point: Point, exclude: int | None = None) -> list[Report]:
    """Open reports of the same category within 50 m (geodesic, on the geography index), nearest first."""
    with connection.cursor() as cursor:
        cursor.execute(_DUPLICATES_SQL, [category.pk, sorted(OPEN_STATUSES), exclude or 0, point.x, point.y,
                                         DUPLICATE_RADIUS_M, point.x, point.y])
        ids = [row[0] for row in cursor.fetchall()]
    found = Report.objects.select_related("category", "agency", "ward").in_bulk(ids)
    return [found[i] for i in ids]


def prepare(draft: ReportDraft, *, count_attempt: bool = True) -> Prepared:
    """Every check that needs no routing (rate limit, text, category, place, media); nothing stored.

    ``count_attempt=False``: the rate limit is left to the group-commit writer
    (the draft carries its client key in memory).
    """
    if count_attempt:
        check_and_count(draft.client)
    category = _category(draft.category)
    description = clean_text(draft.description, field="description", max_length=5000)
    address = clean_text(draft.address, field="address", max_length=500)
    reporter = _reporter(draft.reporter)
    point = _point(draft)
    media = clean_uploads(list(draft.media))
    if not description and not media:
        raise InvalidInput("describe the problem or attach a photo / hãy mô tả hoặc gửi kèm ảnh")
    if draft.channel not in Channel.values:
        raise InvalidInput(f"unknown channel {draft.channel!r}")
    return Prepared(city=city_for(draft.city_slug), category=category, point=point, description=description,
                    address=address, channel=draft.channel, reporter=reporter, media=tuple(media),
                    reported_at=draft.reported_at or timezone.now(), actor_label=draft.actor_label,
                    client=None if count_attempt else draft.client)


def file_report(draft: ReportDraft) -> Filed:
    """Check and store a report; raise a :class:`~twin.errors.TwinError` (4xx) with nothing stored.

    Outside a transaction the report goes through the process's group-commit
    writer (:mod:`reports.services.batcher`) and shares a transaction with
    concurrent filings; this returns only after that commit. Inside a
    caller's transaction it is written there, alone.
    """
    alone = connection.in_atomic_block or not getattr(settings, "REPORTS_GROUP_COMMIT", True)
    if alone:
        prepared = with_stored_media(prepare(draft))
        result = file_batch([prepared])[0]
    else:
        try:
            prepared = prepare(draft, count_attempt=False)
        except TwinError:
            check_and_count(draft.client)   # a refused filing counts too (a flood of bad requests), maybe 429
            raise
        prepared = with_stored_media(prepared)   # here, in parallel across requests, not in the writer's batch
        # Rate-limited, routed, stored, committed and announced by the writer; a valid filing needs no
        # database connection in this thread (under Django's default CONN_MAX_AGE = 0, each request's own).
        result = batcher().submit(prepared).result()
    if isinstance(result, BaseException):
        raise result
    if alone:
        log_filed(result, len(prepared.media))   # the writer's announcer thread logs the ones it filed
    return Filed(report=result, duplicates=_reports_by_id(result.duplicate_ids))


def with_stored_media(prepared: Prepared) -> Prepared:
    """The draft with its media written to the file store, before any transaction (see media_store).

    A filing refused later (rate limit, outside the city, a failed batch)
    leaves files no row references; ``twin prune-report-media`` removes them.
    """
    if not prepared.media:
        return prepared
    return replace(prepared, media=tuple(m if m.digest else replace(m, digest=media_store.store(m.data))
                                         for m in prepared.media))


def _reports_by_id(ids: list[int]) -> list[Report]:
    """Reports in the order of ``ids`` (no query for none, the usual case)."""
    if not ids:
        return []
    found = Report.objects.select_related("category", "agency", "ward").in_bulk(ids)
    return [found[i] for i in ids if i in found]


def _store_media(report: Report, media: list[CleanMedia], stage: str) -> list[int]:
    """Media of one report (the workflow's result photos); filings store theirs in :mod:`filing`."""
    rows = ReportMedia.objects.bulk_create([
        ReportMedia(report=report, kind=m.kind, stage=stage, content_type=m.content_type,
                    sha256=m.digest or media_store.store(m.data), size=len(m.data), width=m.width, height=m.height)
        for m in media])
    return [r.pk for r in rows if r.kind == "photo"]


__all__ = ["DUPLICATE_RADIUS_M", "Filed", "ReportDraft", "ReporterInfo", "city_for", "file_report",
           "find_duplicates", "prepare", "with_stored_media"]
