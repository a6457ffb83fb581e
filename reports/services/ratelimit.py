# SPDX-License-Identifier: AGPL-3.0-or-later
"""Per-client rate limit on filing, shared by every server process (a table, not a local cache).

Only a keyed hash of the client (its address, or an Open311 api_key) is
stored, never the address itself, and rows older than the window are pruned.
"""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from reports.models import IntakeAttempt
from reports.services.errors import RateLimited
from twin.services.sql import Statement, fetch_together


def rate_limit() -> tuple[int, int]:
    """``(max attempts, window seconds)``; setting ``REPORTS_RATE_LIMIT`` (default 10 per 10 minutes)."""
    limit, window = getattr(settings, "REPORTS_RATE_LIMIT", (10, 600))
    return int(limit), int(window)


def client_of(meta) -> str | None:
    """The client address of a request's ``META``.

    Behind a reverse proxy every request comes from the proxy: set
    ``REPORTS_CLIENT_IP_HEADER`` (e.g. ``HTTP_X_REAL_IP``, or ``HTTP_X_FORWARDED_FOR``
    whose first address is taken) to the header *your* proxy sets. Never trust it without one.
    """
    header = getattr(settings, "REPORTS_CLIENT_IP_HEADER", "")
    if header and meta.get(header):
        return meta[header].split(",")[0].strip()
    return meta.get("REMOTE_ADDR")


def client_key(raw: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), raw.encode(), hashlib.sha256).hexdigest()


def check_and_count(raw_client: str | None) -> None:
    """Count one filing attempt for the client; refuse past the limit.

    Committed on its own (before the report's transaction), so failed
    attempts count too: a flood of bad requests is limited as well.
    """
    refused = check_and_count_many([raw_client])[0]
    if refused is not None:
        raise refused


def _refusal(limit: int, window: int) -> RateLimited:
    return RateLimited(f"too many reports from this client: at most {limit} per {window // 60} minutes; "
                       f"try again later / gửi quá nhiều phản ánh, vui lòng thử lại sau", retry_after=window)


# One statement for a whole batch: each filing in order is allowed while the client's attempts in the
# window plus its earlier filings in this batch stay within the limit; the allowed ones are inserted.
# Refused filings are not counted, so "allowed" is exactly "existing + its rank among the client's
# filings in the batch <= limit". Returns the positions (1-based) of the refused ones.
_COUNT_SQL = """
WITH batch AS (SELECT k, ord FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS u(k, ord)),
     existing AS (SELECT client, count(*) AS n FROM reports_intakeattempt
                   WHERE client = ANY(%(keys)s) AND at >= %(since)s GROUP BY client),
     judged AS (SELECT b.ord, b.k, COALESCE(e.n, 0) + row_number() OVER (PARTITION BY b.k ORDER BY b.ord)
                       <= %(limit)s AS allowed
                  FROM batch b LEFT JOIN existing e ON e.client = b.k),
     counted AS (INSERT INTO reports_intakeattempt (client, at) SELECT k, %(now)s FROM judged WHERE allowed)
SELECT ord FROM judged WHERE NOT allowed
"""


@dataclass(frozen=True, slots=True)
class AttemptCount:
    """The count of a batch's filing attempts, split in the statement and the reading of its answer.

    Why: the group-commit writer sends the statement together with its other
    reads (:func:`twin.services.sql.fetch_together`): one wait for the server.
    """

    size: int
    keyed: tuple[tuple[int, str], ...]      # (position in the batch, keyed client)
    limit: int
    window: int
    statement: Statement | None             # None: nothing to count

    def verdicts(self, rows: list[tuple]) -> list[RateLimited | None]:
        out: list[RateLimited | None] = [None] * self.size
        for (position,) in rows:
            out[self.keyed[position - 1][0]] = _refusal(self.limit, self.window)
        return out


def attempt_count(raw_clients: list[str | None]) -> AttemptCount:
    """The :class:`AttemptCount` of the filings of a batch, in order (see :func:`check_and_count_many`)."""
    limit, window = rate_limit()
    keyed = tuple((i, client_key(raw)) for i, raw in enumerate(raw_clients) if raw)
    if limit <= 0 or not keyed:
        return AttemptCount(len(raw_clients), keyed, limit, window, None)
    now = timezone.now()
    since = now - timedelta(seconds=window)
    _prune_now_and_then(since, window)
    return AttemptCount(len(raw_clients), keyed, limit, window, Statement(
        _COUNT_SQL, {"keys": [key for _, key in keyed], "since": since, "limit": limit, "now": now}))


def check_and_count_many(raw_clients: list[str | None]) -> list[RateLimited | None]:
    """:func:`check_and_count` for the filings of a batch, in order, committed before the reports are written.

    Per filing ``None`` (counted) or the refusal (past the limit, not counted),
    a client appearing twice in the batch counting twice. Why: the group-commit
    writer counts a whole batch at once, so a request thread that files a
    valid report needs no database connection of its own.

    One statement in autocommit (``_COUNT_SQL``): the count, the verdicts and
    the insert. It was a count, then ``bulk_create`` (BEGIN, INSERT, COMMIT):
    four round trips that took 30–36 ms of the writer's ~150 ms batch, each a
    wait for the database and then for the GIL. As before, two processes
    counting at the same moment may each allow one attempt more than the
    limit (READ COMMITTED); a limit against floods, not an exact quota.
    """
    count = attempt_count(raw_clients)
    rows = fetch_together([count.statement])[0] if count.statement is not None else []
    return count.verdicts(rows)


_pruned_at = float("-inf")
_prune_lock = threading.Lock()


def _prune_now_and_then(since, window: int) -> None:
    """Delete attempts older than the window, at most every tenth of it (at most every minute) per process.

    Why not every batch: counting reads only the window anyway; the delete only
    keeps the table small, and per batch it was one more statement for the writer.
    """
    global _pruned_at
    with _prune_lock:
        if time.monotonic() - _pruned_at < min(60.0, window / 10):
            return
        _pruned_at = time.monotonic()
    IntakeAttempt.objects.filter(at__lt=since).delete()
