# SPDX-License-Identifier: AGPL-3.0-or-later
"""The doctests of the layers API modules (``layers`` is not in the doctest paths of pyproject)."""
from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["layers.query", "layers.cql", "layers.registry", "layers.labels"])
def test_module_doctests_pass(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
