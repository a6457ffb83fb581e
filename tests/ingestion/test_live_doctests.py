# SPDX-License-Identifier: AGPL-3.0-or-later
"""The live package's pure helpers document themselves with doctests; run them here."""
from __future__ import annotations

import doctest

import pytest

from ingestion.live import auth, filters, outbox, topics


@pytest.mark.parametrize("module", [filters, topics, auth, outbox], ids=lambda m: m.__name__)
def test_doctests_of_the_live_helpers_hold(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
