# SPDX-License-Identifier: AGPL-3.0-or-later
"""Test set-up: a real PostGIS with the real Huế city loaded once per session.

No database mocks. When PostGIS is unreachable pytest-django errors (it
never skips), so CI fails loudly.
"""
from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.test.testcases import LiveServerThread


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Load the default city (Huế, from fixtures/) into the test database once."""
    with django_db_blocker.unblock():
        call_command("load_city", verbosity=0)


@pytest.fixture
def hue(db):
    from twin.models import City

    return City.objects.get(slug="hue")


@pytest.fixture
def committed_live_server(django_db_setup, django_db_blocker):
    """Django's live server over the *committed* test database.

    pytest-django's ``live_server`` forces ``transactional_db``, which flushes
    every table afterwards and would wipe the city loaded once per session.
    Here the test commits only its own user and deletes it afterwards.
    """
    with django_db_blocker.unblock():
        thread = LiveServerThread("localhost", StaticFilesHandler, port=0)
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        password = uuid.uuid4().hex
        user = get_user_model().objects.create_superuser(f"browser-{password[:8]}", password=password)
        try:
            yield f"http://localhost:{thread.port}", user.get_username(), password
        finally:
            thread.terminate()
            user.delete()
