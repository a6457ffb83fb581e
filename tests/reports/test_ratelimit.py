# SPDX-License-Identifier: AGPL-3.0-or-later
"""The batch rate limit: one statement judges a batch's filings in order and counts the allowed ones."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reports.models import IntakeAttempt
from reports.services.errors import RateLimited
from reports.services.ratelimit import check_and_count_many, client_key


@pytest.mark.django_db
def test_a_batch_is_judged_in_order_against_the_window_and_only_allowed_filings_count(settings):
    settings.REPORTS_RATE_LIMIT = (3, 600)
    IntakeAttempt.objects.create(client=client_key("a"), at=timezone.now() - timedelta(seconds=60))
    IntakeAttempt.objects.create(client=client_key("b"), at=timezone.now() - timedelta(seconds=3600))  # outside
    verdicts = check_and_count_many(["a", "b", "a", None, "a", "b", "a", "c"])
    refused = [isinstance(v, RateLimited) for v in verdicts]
    # a: 1 already in the window, so its 1st and 2nd filings here are allowed, the 3rd and 4th refused
    assert refused == [False, False, False, False, True, False, True, False]
    in_window = IntakeAttempt.objects.filter(at__gte=timezone.now() - timedelta(seconds=600))
    assert in_window.filter(client=client_key("a")).count() == 3
    assert in_window.filter(client=client_key("b")).count() == 2
    assert in_window.filter(client=client_key("c")).count() == 1


@pytest.mark.django_db
def test_a_client_at_its_limit_is_refused_with_the_window_to_wait(settings):
    settings.REPORTS_RATE_LIMIT = (2, 600)
    assert check_and_count_many(["x", "x"]) == [None, None]
    [verdict] = check_and_count_many(["x"])
    assert isinstance(verdict, RateLimited) and verdict.retry_after == 600
    assert IntakeAttempt.objects.filter(client=client_key("x")).count() == 2


@pytest.mark.django_db
def test_no_limit_counts_nothing(settings):
    settings.REPORTS_RATE_LIMIT = (0, 600)
    assert check_and_count_many(["x", "x"]) == [None, None]
    assert not IntakeAttempt.objects.exists()
