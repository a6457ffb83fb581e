# SPDX-License-Identifier: AGPL-3.0-or-later
"""The doctests of the reports app (``reports/`` is not in pytest's testpaths)."""
import doctest

import pytest

from reports.services import jpeg, media, notify, text


@pytest.mark.django_db
@pytest.mark.parametrize("module", [jpeg, media, notify, text])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
