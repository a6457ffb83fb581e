# SPDX-License-Identifier: AGPL-3.0-or-later
"""Group commit: batches of filings in one transaction, the writer thread, and batch routing = Router."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from reports.models import Notification, Report, Reporter, ReportMedia, ReportStep
from reports.services.errors import OutsideCity
from reports.services.filing import RouteCache, file_batch
from reports.services.intake import ReportDraft, ReporterInfo, file_report, prepare
from reports.services.media import MediaUpload
from reports.services.routing import router
from tests.reports.conftest import SECRET, delete_reports_after, in_own_thread, inside, photo_with_exif
from twin.models import AdminArea, AdminLevel, Feature, GeoEvent

HANOI = (105.8542, 21.0285)
CATEGORIES = ["sidewalk_encroachment", "littering", "unlicensed_construction", "flooding", "public_order",
              "lighting", "trees", "other"]


def _wards():
    return list(AdminArea.objects.filter(level=AdminLevel.WARD).order_by("code"))


def _draft(area, category="sidewalk_encroachment", **kw) -> ReportDraft:
    lon, lat = inside(area)
    return ReportDraft(category=category, lon=lon, lat=lat, description=kw.pop("description", "Rác tồn đọng"), **kw)


def _rows_of(ids: list[int]) -> dict[str, int]:
    return {"reports": Report.objects.filter(pk__in=ids).count(),
            "media": ReportMedia.objects.filter(report_id__in=ids).count(),
            "steps": ReportStep.objects.filter(report_id__in=ids).count(),
            "features": Feature.objects.filter(layer__slug="hue-reports", external_id__in=[str(i) for i in ids]).count(),
            "events": GeoEvent.objects.filter(source_key__in=[f"report:{i}" for i in ids]).count()}


@pytest.mark.django_db
def test_a_batch_with_one_draft_outside_the_city_refuses_that_one_and_stores_the_others(hue):
    wards = _wards()
    drafts = [_draft(wards[0], media=(MediaUpload("a.jpg", photo_with_exif()),),
                     reporter=ReporterInfo(**SECRET, contact="email")),
              ReportDraft(category="littering", lon=HANOI[0], lat=HANOI[1], description="Hà Nội"),
              _draft(wards[5], "littering")]
    results = file_batch([prepare(d) for d in drafts])
    assert isinstance(results[1], OutsideCity) and "outside" in results[1].message
    first, third = results[0], results[2]
    assert isinstance(first, Report) and isinstance(third, Report)
    assert first.ward == wards[0] and third.ward == wards[5]
    assert _rows_of([first.pk, third.pk]) == {"reports": 2, "media": 1, "steps": 4, "features": 2, "events": 2}
    assert Reporter.objects.get(report=first).email == SECRET["email"]
    assert not Reporter.objects.filter(report=third).exists()
    assert Notification.objects.filter(report=first).count() == 1
    assert not Notification.objects.filter(report=third).exists()
    feature = Feature.objects.get(pk=first.feature_id)
    assert feature.properties["photos"] == [f"/reports/media/{ReportMedia.objects.get(report=first).pk}"]
    event = GeoEvent.objects.get(pk=first.event_id)
    assert event.agency == first.agency and event.payload["routing"] == first.routing
    assert SECRET["name"] not in str(event.payload) and SECRET["email"] not in str(feature.properties)


@pytest.mark.django_db
def test_a_batch_that_fails_in_the_database_keeps_nothing_and_refiles_the_good_drafts_alone(hue):
    """A draft that breaks a statement (here an over-long address) sinks the batch transaction:
    nothing of the batch is kept; each draft is then filed alone, so only the bad one is refused."""
    wards = _wards()
    good = [prepare(_draft(wards[i], media=(MediaUpload("a.jpg", photo_with_exif()),))) for i in (1, 2)]
    bad = prepare(_draft(wards[3]))
    object.__setattr__(bad, "address", "x" * 600)      # bypasses the 500-character check on purpose
    last = Report.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    results = file_batch([good[0], bad, good[1]])
    assert isinstance(results[0], Report) and isinstance(results[2], Report)
    assert not isinstance(results[1], Report) and "nothing was kept" in str(results[1])
    stored = list(Report.objects.filter(pk__gt=last).values_list("pk", flat=True))
    assert sorted(stored) == sorted([results[0].pk, results[2].pk])
    assert _rows_of(stored) == {"reports": 2, "media": 2, "steps": 4, "features": 2, "events": 2}


@pytest.mark.django_db
def test_a_rolled_back_batch_leaves_no_rows_and_no_media(hue):
    wards = _wards()
    batch = [prepare(_draft(wards[i], media=(MediaUpload("a.jpg", photo_with_exif()),))) for i in (4, 6)]
    last = Report.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with pytest.raises(RuntimeError), transaction.atomic():
        results = file_batch(batch)
        assert all(isinstance(r, Report) for r in results)
        raise RuntimeError("the caller's transaction fails after the batch")
    assert not Report.objects.filter(pk__gt=last).exists()
    assert not ReportMedia.objects.filter(report_id__gt=last).exists()
    assert not GeoEvent.objects.filter(source_key__in=[f"report:{r.pk}" for r in results]).exists()
    assert not Feature.objects.filter(layer__slug="hue-reports", external_id__in=[str(r.pk) for r in results]).exists()


def _sample_points() -> list[tuple[float, float]]:
    """Points inside every ward, vertices of ward outlines (on shared boundaries) and points a few metres off."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT ST_X(p), ST_Y(p) FROM (
              SELECT d.geom AS p, row_number() OVER (ORDER BY a.code, d.path) AS n
                FROM twin_adminarea a, LATERAL ST_DumpPoints(ST_Boundary(a.geom)) AS d
               WHERE a.level = %s) AS v
             WHERE n %% 53 = 0 LIMIT 150""", [int(AdminLevel.WARD)])
        vertices = cursor.fetchall()
    points = [inside(w) for w in _wards()] + vertices
    points += [(x + 0.00004, y) for x, y in vertices[:60]] + [(x, y - 0.00007, ) for x, y in vertices[60:120]]
    return points + [HANOI]


@pytest.mark.django_db
def test_batch_routing_gives_the_same_decision_and_candidates_as_router_on_many_points(hue):
    from django.contrib.gis.geos import Point

    cache, checked = RouteCache(), 0
    for index, (x, y) in enumerate(_sample_points()):
        category = CATEGORIES[index % len(CATEGORIES)]
        point = Point(x, y, srid=4326)
        expected, got = router().route(point, category), cache.route(point, category)
        assert got.as_payload() == expected.as_payload(), (x, y, category)
        assert (got.agency, got.ward, got.province) == (expected.agency, expected.ward, expected.province)
        assert got.candidates == expected.candidates
        checked += 1
    assert checked > 150


@pytest.mark.django_db
def test_batch_routing_sample_includes_boundary_points_with_several_candidates(hue):
    from django.contrib.gis.geos import Point

    cfg = router().cfg
    from ingestion.routing import ward_candidates

    several = sum(len(ward_candidates(Point(x, y, srid=4326), cfg.boundary_tolerance_m)) > 1
                  for x, y in _sample_points())
    assert several >= 20


def test_concurrent_submitters_share_commits_and_each_gets_its_own_correctly_routed_report(
        django_db_setup, django_db_blocker, caplog):
    """Threads outside any transaction file through the writer thread (committed), each filing is logged
    by the writer's announcer thread, then clean up."""
    import logging

    from reports.services.batcher import batcher

    caplog.set_level(logging.INFO, logger="reports.services.filing")

    with django_db_blocker.unblock():
        wards = _wards()
        last = Report.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        photo = photo_with_exif((320, 240))
        results: dict[int, object] = {}

        def submit(n: int) -> None:
            try:
                area = wards[n % len(wards)]
                results[n] = file_report(_draft(area, CATEGORIES[n % len(CATEGORIES)],
                                                media=(MediaUpload("p.jpg", photo),)))
            except BaseException as exc:  # shown in the assertion below
                results[n] = exc
            finally:
                connection.close()

        try:
            threads = [threading.Thread(target=submit, args=(n,)) for n in range(24)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert batcher().thread.is_alive()
            errors = [r for r in results.values() if isinstance(r, BaseException)]
            assert not errors, errors
            assert len(results) == 24
            from django.contrib.gis.geos import Point
            for n, filed in results.items():
                report = Report.objects.select_related("agency", "ward").get(pk=filed.report.pk)
                lon, lat = inside(wards[n % len(wards)])
                expected = router().route(Point(lon, lat, srid=4326), report.category.route_as)
                assert (report.ward, report.agency) == (expected.ward, expected.agency)
                assert report.routing == expected.as_payload()
                assert report.feature_id and report.event_id
            ids = [f.report.pk for f in results.values()]
            assert _rows_of(ids) == {"reports": 24, "media": 24, "steps": 48, "features": 24, "events": 24}
            batcher().announcer.submit(lambda: None).result(10)      # what the announcer had queued is done
            logged = {r.args[0] for r in caplog.records if r.getMessage().startswith("report ")
                      and " filed: " in r.getMessage() and r.getMessage().endswith(", 1 media")}
            assert logged >= set(ids)
        finally:
            in_own_thread(lambda: delete_reports_after(last))


@pytest.mark.django_db
def test_the_writer_counts_a_batch_against_the_rate_limit_and_refuses_past_it(hue, settings):
    """Drafts reach the writer uncounted (the request thread needs no connection); the batch counts them."""
    from dataclasses import replace

    from reports.models import IntakeAttempt
    from reports.services.errors import RateLimited

    settings.REPORTS_RATE_LIMIT = (2, 600)
    wards = _wards()
    drafts = [replace(prepare(_draft(wards[i]), count_attempt=False), client="203.0.113.9") for i in range(3)]
    other = replace(prepare(_draft(wards[4]), count_attempt=False), client="198.51.100.7")
    results = file_batch([drafts[0], other, drafts[1], drafts[2]], count_attempts=True)
    assert [type(r).__name__ for r in results] == ["Report", "Report", "Report", "RateLimited"]
    assert isinstance(results[3], RateLimited) and results[3].retry_after == 600
    assert IntakeAttempt.objects.count() == 3
    assert not IntakeAttempt.objects.filter(client__contains="203.0.113").exists()   # a keyed hash only


@pytest.mark.django_db
def test_a_refused_filing_still_counts_against_the_rate_limit(hue, settings):
    """Outside a transaction the writer counts valid filings; a draft refused in the request thread is counted
    there, so a flood of bad requests is limited too (429 once past the limit)."""
    from reports.models import IntakeAttempt
    from reports.services.errors import RateLimited

    settings.REPORTS_RATE_LIMIT = (2, 600)
    bad = ReportDraft(category="nope", lon=1, lat=1, client="192.0.2.1")
    results = []

    def flood() -> None:
        from twin.errors import TwinError

        for _ in range(3):
            try:
                file_report(bad)
            except TwinError as exc:
                results.append(type(exc).__name__)
        IntakeAttempt.objects.all().delete()
        connection.close()

    in_own_thread(flood)     # outside the test's transaction: the group-commit path
    assert results == ["InvalidInput", "InvalidInput", "RateLimited"]
    assert RateLimited.status == 429


def test_the_writer_looks_up_the_reports_layer_once_not_once_per_batch(django_db_setup, django_db_blocker):
    """Outside a transaction the layer is remembered with the routing rows (each draft carries its own City copy)."""
    from django.test.utils import CaptureQueriesContext

    from reports.services.filing import ROUTES

    with django_db_blocker.unblock():
        wards = _wards()
        last = Report.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        captured = []

        def two_batches() -> None:
            ROUTES.clear()
            file_batch([prepare(_draft(wards[1]), count_attempt=False)])
            with CaptureQueriesContext(connection) as queries:
                stored = file_batch([prepare(_draft(wards[2]), count_attempt=False)])
            captured.extend(q["sql"] for q in queries.captured_queries)
            assert isinstance(stored[0], Report) and stored[0].feature_id

        try:
            in_own_thread(two_batches)
            assert not [sql for sql in captured if 'FROM "twin_layer"' in sql], captured
        finally:
            in_own_thread(lambda: delete_reports_after(last))


@pytest.mark.django_db
def test_attempts_older_than_the_window_are_pruned_while_counting(hue, settings):
    from datetime import timedelta

    from django.utils import timezone

    from reports.models import IntakeAttempt
    from reports.services import ratelimit

    settings.REPORTS_RATE_LIMIT = (5, 600)
    IntakeAttempt.objects.create(client="old", at=timezone.now() - timedelta(seconds=1200))
    ratelimit._pruned_at = float("-inf")
    assert ratelimit.check_and_count_many(["198.51.100.8"]) == [None]
    assert not IntakeAttempt.objects.filter(client="old").exists()
    assert IntakeAttempt.objects.count() == 1


@pytest.mark.django_db
def test_a_filed_batch_is_written_by_one_statement_that_also_bumps_the_layers_data_version(hue):
    """All of a batch or nothing, without a transaction of its own; tiles refresh; the writer waits for the
    server once for its writes (the ids are taken before, the duplicates read after)."""
    from django.test.utils import CaptureQueriesContext

    def version() -> int | None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT v.version FROM twin_layer_data_version v JOIN twin_layer l ON l.id = v.layer_id "
                           "WHERE l.slug = 'hue-reports'")
            row = cursor.fetchone()
            return row[0] if row else None

    before = version()
    wards = _wards()
    drafts = [prepare(_draft(wards[1], media=(MediaUpload("a.jpg", photo_with_exif()),),
                             reporter=ReporterInfo(**SECRET, contact="email"))),
              prepare(_draft(wards[2], "trees"))]
    with CaptureQueriesContext(connection) as queries:
        results = file_batch(drafts)
    assert all(isinstance(r, Report) for r in results)
    assert version() is not None and version() != before
    sent = [q["sql"].lstrip() for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    writes = [sql for sql in sent if sql.upper().startswith(("WITH", "INSERT", "UPDATE", "DELETE"))]
    assert len(writes) == 1
    for table in ("reports_report ", "reports_reporter ", "reports_reportmedia ", "reports_reportstep ",
                  "reports_notification ", "twin_feature ", "twin_geoevent ", "twin_geoeventtransition ",
                  "twin_layer_data_version "):
        assert f"INSERT INTO {table}" in writes[0].replace('"', "") + " ", table
    assert any("nextval" in sql for sql in sent[:sent.index(writes[0])])     # the ids, before
    assert _rows_of([r.pk for r in results]) == {"reports": 2, "media": 1, "steps": 4, "features": 2, "events": 2}
