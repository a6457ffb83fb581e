# SPDX-License-Identifier: AGPL-3.0-or-later
"""Test set-up: a real PostGIS with the real Huế city loaded once per session.

No database mocks. When PostGIS is unreachable pytest-django errors (it
never skips), so CI fails loudly.
"""
from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Load the default city (Huế, from fixtures/) into the test database once."""
    with django_db_blocker.unblock():
        call_command("load_city", verbosity=0)


@pytest.fixture
def hue(db):
    from twin.models import City

    return City.objects.get(slug="hue")
