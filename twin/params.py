# SPDX-License-Identifier: AGPL-3.0-or-later
"""Query-parameter parsers shared by every HTTP API (twin/api.py, layers/spatial_api.py, …).

One parser per kind of value; each raises :class:`~twin.errors.InvalidInput`
(a 400 that names the parameter), so no view parses numbers its own way.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from twin.errors import InvalidInput


def parse_number(params: Mapping[str, str], name: str, *, required: bool = True) -> float | None:
    """A finite float from ``params[name]``; ``None`` when absent and not ``required``."""
    raw = params.get(name, "").strip()
    if not raw:
        if required:
            raise InvalidInput(f"parameter {name!r} is required")
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"parameter {name!r} must be a number, not {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise InvalidInput(f"parameter {name!r} must be a finite number")
    return value


def parse_integer(params: Mapping[str, str], name: str, default: int) -> int:
    """An integer from ``params[name]``, ``default`` when absent (ranges are the query object's job)."""
    raw = params.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"parameter {name!r} must be an integer, not {raw[:40]!r}") from None
