# SPDX-License-Identifier: AGPL-3.0-or-later
"""Writing observations: COPY into staging, then one set-based insert.

Observations arrive in bulk (sensor bursts, AIS replays). They are written
with ``COPY`` into a temporary table and moved with one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` so that a repeated reading
(same feature, same time) is counted as a duplicate instead of failing the
whole batch. Monthly partitions are created ahead of the rows that need them.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

import orjson
import psycopg
from django.db import IntegrityError, connection, transaction

from twin.errors import ImportRejected

logger = logging.getLogger(__name__)


class ObservationRow(NamedTuple):
    """One row for ``twin_observation`` (a named tuple: one is built per reading, see ``ingestion.messages.Reading``)."""

    feature_id: int
    time: datetime
    values: dict
    lon: float | None = None
    lat: float | None = None


@dataclass(slots=True)
class ObservationReport:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0


def month_start(moment: datetime) -> datetime:
    """First instant (UTC) of the month holding ``moment``.

    >>> month_start(datetime(2026, 11, 24, 5, tzinfo=timezone.utc)).isoformat()
    '2026-11-01T00:00:00+00:00'
    """
    moment = moment.astimezone(timezone.utc)
    return datetime(moment.year, moment.month, 1, tzinfo=timezone.utc)


def _next_month(start: datetime) -> datetime:
    return datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=timezone.utc)


def ensure_partitions(first: datetime, last: datetime) -> list[str]:
    """Create the monthly partitions covering ``first``..``last`` if missing.

    Rows already sitting in the DEFAULT partition for a month are moved into
    the new partition in the same transaction (PostgreSQL refuses to attach a
    partition whose rows the default still holds).
    """
    created: list[str] = []
    start = month_start(first)
    with connection.cursor() as cursor:
        while start <= last:
            end = _next_month(start)
            name = f"twin_observation_{start:%Y%m}"
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is None:
                _create_partition(cursor, name, start, end)
                created.append(name)
            start = end
    return created


def _create_partition(cursor, name: str, start: datetime, end: datetime) -> None:
    with transaction.atomic():
        cursor.execute("LOCK TABLE twin_observation IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute("SELECT to_regclass(%s)", [name])
        if cursor.fetchone()[0] is not None:
            return
        cursor.execute(f'CREATE TABLE "{name}" (LIKE twin_observation INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
        cursor.execute(
            f'WITH moved AS (DELETE FROM twin_observation_default WHERE time >= %s AND time < %s RETURNING *) '
            f'INSERT INTO "{name}" SELECT * FROM moved', [start, end]
        )
        cursor.execute(
            f'ALTER TABLE twin_observation ATTACH PARTITION "{name}" FOR VALUES FROM (%s) TO (%s)', [start, end]
        )
    logger.info("created observation partition %s", name)


def _batched(rows: Iterable[ObservationRow], size: int) -> Iterator[list[ObservationRow]]:
    batch: list[ObservationRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def record_observations(rows: Iterable[ObservationRow], *, batch_size: int = 200_000) -> ObservationReport:
    """Write observations; unknown feature ids reject the batch, repeats are skipped."""
    report = ObservationReport()
    for batch in _batched(rows, batch_size):
        report.received += len(batch)
        inserted = _write_batch(batch)
        report.inserted += inserted
        report.duplicates += len(batch) - inserted
    return report


def _write_batch(batch: list[ObservationRow]) -> int:
    """Write one batch; returns the number of new rows.

    Fast path: COPY straight into the partitioned table inside a savepoint.
    Only when that hits a repeated (feature, time) does the batch go through
    a staging table and ``ON CONFLICT DO NOTHING``, so replays cost more than
    fresh data, never the other way round.
    """
    times = [row.time for row in batch]
    if any(t.tzinfo is None for t in times):
        raise ImportRejected("observation times must carry a time zone")
    ensure_partitions(min(times), max(times))
    with transaction.atomic(), connection.cursor() as cursor:
        _check_features(cursor, {row.feature_id for row in batch})
        try:
            with transaction.atomic():
                _copy_observations(cursor, "twin_observation", batch)
            return len(batch)
        except (IntegrityError, psycopg.errors.UniqueViolation):
            pass  # the batch repeats readings: take the merging path below
        cursor.execute(
            "CREATE TEMP TABLE _observation_stage (feature_id bigint, time timestamptz, \"values\" jsonb, "
            "position geometry) ON COMMIT DROP"
        )
        _copy_observations(cursor, "_observation_stage", batch)
        cursor.execute(
            'INSERT INTO twin_observation (feature_id, time, "values", position) '
            'SELECT feature_id, time, "values", position FROM _observation_stage '
            "ON CONFLICT (feature_id, time) DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute("DROP TABLE _observation_stage")
    return inserted


def _check_features(cursor, feature_ids: set[int]) -> None:
    """One query per batch instead of a per-row foreign-key trigger."""
    cursor.execute("SELECT id FROM twin_feature WHERE id = ANY(%s)", [list(feature_ids)])
    missing = feature_ids - {r[0] for r in cursor.fetchall()}
    if missing:
        raise ImportRejected(
            f"observations refer to {len(missing)} unknown feature id(s); nothing was written",
            problems=[f"unknown feature id {fid}" for fid in sorted(missing)[:50]],
        )


def _copy_observations(cursor, table: str, batch: list[ObservationRow]) -> None:
    """COPY a batch as text rendered here, in 1 MiB writes.

    Rendering the COPY text ourselves is about 3× faster than per-row
    ``write_row`` adaptation and keeps this path near raw COPY speed.
    """
    with cursor.cursor.copy(f'COPY {table} (feature_id, time, "values", position) FROM STDIN') as copy:
        lines: list[str] = []
        size = 0
        for row in batch:
            line = _copy_line(row)
            lines.append(line)
            size += len(line)
            if size >= 1 << 20:
                copy.write("".join(lines))
                lines, size = [], 0
        if lines:
            copy.write("".join(lines))


# The strict encoder: any integer, and NaN/Infinity refused (json.dumps with
# options builds a new JSONEncoder per call, a third of its cost).
_encode_strictly = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def _encode_values(values: Any) -> str:
    """A reading's values as JSON text: orjson (0.24 against 2.3 µs a reading), with json's rules.

    orjson writes NaN and Infinity as ``null`` and refuses integers beyond 64
    bits; json refuses the first and takes the second. So a text holding
    ``null`` (rare in readings) and anything orjson refuses go through the
    strict encoder: the same JSON value as before (only the spacing may
    differ), and the same error for values JSON cannot hold.

    >>> _encode_values({"pm25": 12.5, "ok": True, "n": None})
    '{"pm25":12.5,"ok":true,"n":null}'
    """
    try:
        text = orjson.dumps(values)
    except TypeError:
        return _encode_strictly(values)
    if b"null" in text:
        _encode_strictly(values)          # raises on NaN/Infinity; a real null passes
    return text.decode()


def _copy_line(row: ObservationRow) -> str:
    r"""One row in COPY text format (tab-separated, backslash-escaped).

    >>> _copy_line(ObservationRow(7, datetime(2026, 1, 1, tzinfo=timezone.utc), {"note": "a\tb"}, 107.5, 16.4))
    '7\t2026-01-01T00:00:00+00:00\t{"note":"a\\\\tb"}\tSRID=4326;POINT(107.5 16.4)\n'
    """
    # JSON escapes control characters, so only backslashes need
    # doubling for COPY's text format.
    values = _encode_values(row.values).replace("\\", "\\\\")
    if row.lon is not None and row.lat is not None:
        position = f"SRID=4326;POINT({float(row.lon)!r} {float(row.lat)!r})"
    else:
        position = "\\N"
    return f"{int(row.feature_id)}\t{row.time.isoformat()}\t{values}\t{position}\n"


__all__ = ["ObservationReport", "ObservationRow", "ensure_partitions", "month_start", "record_observations"]
