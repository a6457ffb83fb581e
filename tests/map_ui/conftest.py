# SPDX-License-Identifier: AGPL-3.0-or-later
"""Fixtures of the map's browser tests: one running platform and one Chromium per module."""
from __future__ import annotations

import os

import pytest
from django.db import connections

from tests.map_ui.support import Browser_, start_stack


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        yield from start_stack(tmp_path_factory.mktemp("map-stack"))


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an asyncio loop in this thread; Django then refuses database
    # calls here although nothing runs concurrently. The tests' own queries are sequential.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    chromium = Browser_()
    try:
        yield chromium
    finally:
        # Playwright's greenlet has its own context, hence its own Django connections: close
        # them here, or the test database cannot be dropped at the end of the session.
        connections.close_all()
        chromium.close()
        connections.close_all()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
