# SPDX-License-Identifier: AGPL-3.0-or-later
"""Device liveness: ``DeviceLiveness.last_seen`` and ``Feature.status`` from incoming readings.

Called once per ingestion batch with every device heard in it: one
statement over ``unnest(...)`` instead of one per reading, so liveness costs
the same for ten readings or fifty thousand. ``last_seen`` lives in its own
narrow table (why: ``twin.models.features.DeviceLiveness``; readers use ``last_seen_sql``); the feature row
is written only when the device's status actually changes.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.db import connection, transaction

from twin.errors import InvalidInput
from twin.services import announce
from twin.models import FeatureStatus

# What a device may say about itself. ``retired`` is an operator decision and
# ``offline`` is concluded by the platform (a device cannot report it).
DEVICE_SETTABLE_STATUSES = frozenset({FeatureStatus.ACTIVE, FeatureStatus.INACTIVE, FeatureStatus.MAINTENANCE,
                                      FeatureStatus.DEGRADED})

# Rows are written in id order (the input is sorted): concurrent workers lock them in the same order.
_SQL = """
WITH v AS (
    SELECT v.id, v.seen, v.status, f.status AS was,
           CASE WHEN f.status = 'retired' THEN f.status
                WHEN v.status IS NOT NULL THEN v.status
                WHEN f.status = 'offline' THEN 'active'
                ELSE f.status END AS now
      FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS v(id, seen, status)
      JOIN twin_feature f ON f.id = v.id
), seen AS (
    INSERT INTO twin_deviceliveness AS dl (feature_id, last_seen)
    SELECT id, seen FROM v ORDER BY id
    ON CONFLICT (feature_id) DO UPDATE SET last_seen = GREATEST(dl.last_seen, EXCLUDED.last_seen)
    RETURNING 1
), changed AS (
    UPDATE twin_feature f SET status = v.now FROM v WHERE f.id = v.id AND v.now <> v.was
    RETURNING 1
)
SELECT (SELECT count(*) FROM seen), (SELECT count(*) FROM changed)
"""



def mark_devices_seen(seen: Mapping[int, datetime], statuses: Mapping[int, str] | None = None) -> int:
    """Record that devices reported; returns the number of features updated.

    Parameters
    ----------
    seen
        feature id → time of its latest reading in the batch. ``last_seen``
        only moves forward (a late, buffered reading does not rewind it).
    statuses
        feature id → status the device reported about itself (``active``,
        ``inactive``, ``maintenance``, ``degraded``). A device marked ``offline`` that
        reports again becomes ``active``; a ``retired`` one never changes.
    """
    statuses = statuses or {}
    bad = {s for s in statuses.values() if s not in DEVICE_SETTABLE_STATUSES}
    if bad:
        raise InvalidInput(f"a device cannot set its status to {sorted(bad)}")
    if not seen:
        return 0
    # Sorted ids: concurrent workers lock rows in the same order (no deadlock).
    ids = sorted(seen)
    # No savepoint inside a caller's transaction (the sink's, once per batch): one statement, and its
    # error fails that transaction anyway.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(_SQL, [ids, [seen[i] for i in ids], [statuses.get(i) for i in ids]])
        recorded, _status_changes = cursor.fetchone()
        announce.features_changed(ids)
        return recorded


__all__ = ["DEVICE_SETTABLE_STATUSES", "mark_devices_seen"]
