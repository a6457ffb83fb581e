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
    with django_db_blocker.unblock():
        call_command("load_report_categories", verbosity=0)


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
