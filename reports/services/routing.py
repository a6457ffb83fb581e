# SPDX-License-Identifier: AGPL-3.0-or-later
"""Routing a report: the same resolution chain as geo-events (ingestion.routing), not a copy.

The router is built once per process from ``rules.toml`` ``[routing]``;
:func:`reset_router` drops it (tests, a changed file).
"""
from __future__ import annotations

from functools import lru_cache

from django.contrib.gis.geos import Point

from ingestion.routing import Route, Router
from ingestion.rules.engine import load_rules
from twin.models import Agency


@lru_cache(maxsize=1)
def router() -> Router:
    return Router(load_rules().routing)


def reset_router() -> None:
    """Re-read the rules and forget remembered routing decisions (reports.services.filing.ROUTES)."""
    router.cache_clear()
    from reports.services.filing import ROUTES

    ROUTES.clear()


def route_report(point: Point, route_as: str) -> Route:
    """Ward, province and responsible agency for a report of category ``route_as`` at ``point``."""
    return router().route(point, route_as)


def agency_by_code(code: str) -> Agency | None:
    return Agency.objects.filter(code=code).first()
