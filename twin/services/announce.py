# SPDX-License-Identifier: AGPL-3.0-or-later
"""Tell live listeners (the map, other systems) about a change once it is committed.

The services call these inside their transaction; the announcer runs only
after the outermost commit (``transaction.on_commit``), never for a rolled
back change, and its failure never fails the write (``robust=True``, Django
logs it). ``settings.LIVE_ANNOUNCER`` names the module that publishes
(``ingestion.live.announce``); empty turns announcing off, e.g. for a bulk
back-fill. Core code names no transport.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


def _on_commit(name: str, *args) -> None:
    module = getattr(settings, "LIVE_ANNOUNCER", "")
    if module:
        transaction.on_commit(partial(import_string(f"{module}.{name}"), *args), robust=True)


def event_changed(event_id: int, op: str) -> None:
    """After commit: event ``event_id`` was ``created``, ``updated`` or went through a ``transition``."""
    _on_commit("event_changed", event_id, op)


def features_changed(feature_ids: Iterable[int]) -> None:
    """After commit: these features' status or ``last_seen`` may have changed."""
    _on_commit("features_changed", tuple(feature_ids))


__all__ = ["event_changed", "features_changed"]
