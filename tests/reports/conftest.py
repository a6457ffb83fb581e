# SPDX-License-Identifier: AGPL-3.0-or-later
"""Fixtures for citizen reports: categories loaded once, users with roles, photos with EXIF."""
from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import call_command
from PIL import Image

from twin.roles import Role

SECRET = {"name": "Nguyễn Văn Bímật", "phone": "0905123987", "email": "bimat.reporter@example.org",
          "device_id": "device-SECRET-42"}


@pytest.fixture(scope="session", autouse=True)
def report_categories(django_db_setup, django_db_blocker):
    """Categories from fixtures/reports/report_categories.toml, committed once for the session."""
    from django.db import connection

    with django_db_blocker.unblock():
        # Never the real database: a session with no django_db test would connect to it.
        assert connection.settings_dict["NAME"].startswith("test_"), connection.settings_dict["NAME"]
        # On its own connection, committed: when the first test of the session has already opened its
        # transaction, loading there would leave the category rows locked (and, in a fresh database,
        # invisible to the live server) for that test, and roll them back after it.
        in_own_thread(lambda: call_command("load_report_categories", verbosity=0))


@pytest.fixture(scope="session", autouse=True)
def _stop_batcher(django_db_setup):
    """The group-commit writer's connection must be closed before the test database is dropped."""
    yield
    from reports.services.batcher import stop

    stop()


@pytest.fixture(autouse=True)
def _fresh_router():
    from reports.services.routing import reset_router

    reset_router()
    yield
    reset_router()


def make_user(role: Role | None, agency_codes: tuple[str, ...] = ()):
    from reports.models import AgencyOfficer
    from twin.models import Agency
    from twin.services.users import UserSpec, ensure_user

    user, _ = ensure_user(UserSpec(username=f"{role.value if role else 'nobody'}-{uuid.uuid4().hex[:6]}",
                                   roles=(role,) if role else (), password=None))
    for code in agency_codes:
        AgencyOfficer.objects.create(user=user, agency=Agency.objects.get(code=code))
    return user


def ward(code: str | None = None):
    from twin.models import AdminArea, AdminLevel

    query = AdminArea.objects.filter(level=AdminLevel.WARD)
    return query.get(code=code) if code else query.order_by("code").first()


def inside(area) -> tuple[float, float]:
    p = area.geom.point_on_surface
    return p.x, p.y


def photo_with_exif(size=(64, 48), fmt="JPEG") -> bytes:
    """A real JPEG carrying GPS position, camera make/model and serial number."""
    image = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "SecretMake"        # Make
    exif[0x0110] = "SecretModel"       # Model
    exif[0x0131] = "SecretSoftware"    # Software
    exif.get_ifd(0x8769)[0xA431] = "SERIAL-777"                     # BodySerialNumber
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (16.0, 27.0, 50.0), 3: "E", 4: (107.0, 35.0, 20.0)})
    out = io.BytesIO()
    image.save(out, format=fmt, exif=exif)
    return out.getvalue()


@pytest.fixture
def operator(db):
    return make_user(Role.OPERATOR)


@pytest.fixture
def live(committed_live_server, django_db_blocker):
    """The live server over committed data; reports filed through it are deleted afterwards.

    The deletion runs on its own connection while the test's transaction is
    still open, so a test using ``live`` must not write (or lock rows) in
    its own transaction: its locks would make the clean-up wait on the test
    forever. That is checked first (a clear failure naming the rule), and the
    clean-up gives up after ``lock_timeout`` instead of hanging.
    """
    from reports.models import IntakeAttempt, Report

    with django_db_blocker.unblock():
        last = Report.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        before = _own_writes()
    yield committed_live_server[0]
    with django_db_blocker.unblock():
        after = _own_writes()
    wrote = sorted(table for table, count in after.items() if count > before.get(table, 0))
    in_own_thread(lambda: (_lock_timeout(), delete_reports_after(last), IntakeAttempt.objects.all().delete()))
    assert not wrote, (f"this test wrote {wrote} in its own transaction while using the live server; do such "
                       "writes committed, on their own connection (in_own_thread)")


_OWN_WRITES_SQL = """
SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables
 WHERE relname LIKE 'reports%' OR relname LIKE 'twin_geoevent%'
    OR relname IN ('twin_feature', 'twin_layer_data_version')
"""


def _own_writes() -> dict[str, int]:
    """Rows this connection's open transaction wrote to what the clean-up deletes, per table.

    Compared before and after the test: the view also counts earlier transactions not yet flushed
    to the statistics, but nothing is flushed while a transaction is open.
    """
    from django.db import connection

    if not connection.in_atomic_block:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_OWN_WRITES_SQL)
        return dict(cursor.fetchall())


def _lock_timeout(seconds: int = 20) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{seconds}s'")


def in_own_thread(func) -> None:
    """Run ``func`` on its own connection (a thread), committed, outside the test's transaction."""
    import threading

    from django.db import connection

    errors: list[BaseException] = []

    def run():
        try:
            func()
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def delete_reports_after(last_id: int) -> None:
    """Remove committed reports with their feature and geo-events (a test's own data)."""
    from reports.models import Report
    from reports.services.bulk import delete_reports

    delete_reports(list(Report.objects.filter(pk__gt=last_id).values_list("pk", flat=True)))
