# SPDX-License-Identifier: AGPL-3.0-or-later
"""Rule state and episodes: one event per condition, updated while it lasts.

An *episode* is one occurrence of a condition (a level above its threshold,
a device silent, a boat inside a zone). Its event has the stable source key
``<rule>:<subject>:<episode start>``, so every update goes to the same row
(``raise_event`` updates by ``source_key``) and a recurrence after the
condition cleared is a new event. The rule's memory lives in ``RuleState``
rows, locked with ``SELECT … FOR UPDATE`` in a stable order for the whole
evaluation, so two ingestion workers never open two events for one
condition and never deadlock each other.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from django.contrib.gis.geos import Point
from django.utils import timezone as dj_timezone
from psycopg.types.json import Jsonb

from ingestion.models import RuleState
from twin.models import EventStatus, GeoEvent
from twin.services import EventDraft, RoutedTo, raise_event, transition_event
from twin.services.sql import bound_cursor

if TYPE_CHECKING:
    from ingestion.rules.base import Rule

logger = logging.getLogger(__name__)

OPEN_STATUSES = frozenset({EventStatus.NEW, EventStatus.ACKNOWLEDGED, EventStatus.DISPATCHED})


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with a fixed width, so stored times also compare as strings.

    >>> iso(datetime(2026, 11, 24, 8, 30, tzinfo=timezone.utc))
    '2026-11-24T08:30:00.000000Z'
    """
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=1024)
def parse_iso(text: str) -> datetime:
    """The inverse of :func:`iso`.

    >>> parse_iso('2026-11-24T08:30:00.000000Z').isoformat()
    '2026-11-24T08:30:00+00:00'
    """
    return datetime.fromisoformat(text)      # C, ~20× faster than strptime; "Z" is UTC since Python 3.11


def episode_key(rule: str, subject: str, started_at: datetime) -> str:
    """The source key of one episode's event.

    >>> episode_key("threshold", "42:water", datetime(2026, 11, 24, 8, 30, tzinfo=timezone.utc))
    'threshold:42:water:20261124T083000Z'
    """
    return f"{rule}:{subject}:{started_at.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"


def lock_states(rule: str, subjects: Iterable[str]) -> dict[str, StateRow]:
    """Lock the subjects' state rows in subject order, creating the missing ones first.

    Must run inside a transaction: the locks last until it ends. Existing rows
    are locked straight away (the usual case: one statement); only subjects
    seen for the first time are inserted, with ``ON CONFLICT DO NOTHING`` so
    that two workers meeting a new subject at once still end up with one row,
    and then locked too.
    """
    wanted = sorted(set(subjects))
    if not wanted:
        return {}
    rows = {row.subject: row for row in _locked(rule, wanted)}
    missing = [s for s in wanted if s not in rows]
    if missing:
        now = dj_timezone.now()
        RuleState.objects.bulk_create([RuleState(rule=rule, subject=s, state={}, updated_at=now) for s in missing],
                                      ignore_conflicts=True)
        rows.update((row.subject, row) for row in _locked(rule, missing))
    return rows


_LOCK_SQL = f"""
SELECT id, subject, state, event_id FROM {RuleState._meta.db_table}
WHERE rule = %s AND subject = ANY(%b) ORDER BY subject FOR UPDATE
"""


def _locked(rule: str, subjects: list[str]) -> list[StateRow]:
    """The rows, locked in subject order; bound parameters, no ORM query building (run per batch)."""
    with bound_cursor() as cursor:
        cursor.execute(_LOCK_SQL, [rule, subjects])
        rows = cursor.fetchall()
    return [StateRow(pk, subject, state, event_id) for pk, subject, state, event_id in rows]


class StateRow:
    """A locked ``RuleState`` row as the rules use it: its state document and its open event.

    Not the Django model: rules touch dozens of rows per batch, and building
    model instances cost more than the rule's own work on them. Written back
    with :func:`save_states`.
    """

    __slots__ = ("pk", "subject", "state", "event_id")

    def __init__(self, pk: int, subject: str, state: Any, event_id: int | None) -> None:
        if isinstance(state, str):          # Django's connection loads jsonb as text (JSONField decodes it)
            state = json.loads(state)
        self.pk, self.subject, self.state, self.event_id = pk, subject, state, event_id


_SAVE_SQL = f"""
UPDATE {RuleState._meta.db_table} AS r
SET state = v.state, event_id = v.event_id, updated_at = %s
FROM unnest(%b::bigint[], %b::jsonb[], %b::bigint[]) AS v(id, state, event_id)
WHERE r.id = v.id
"""


def save_states(states: Iterable[StateRow]) -> None:
    """Write back what the rule changed (state JSON, open event) in one ``UPDATE … FROM unnest``.

    Django's ``bulk_update`` builds one ``CASE WHEN`` per row and field, and
    building it cost more than everything else a rule does on a busy stream.
    Bound on the server (:func:`~twin.services.sql.bound_cursor`): escaping
    the state documents into the SQL text cost as much again.
    """
    rows = sorted(states, key=lambda row: row.pk)
    if not rows:
        return
    now = dj_timezone.now()
    with bound_cursor() as cursor:
        cursor.execute(_SAVE_SQL, [now, [row.pk for row in rows], [Jsonb(row.state) for row in rows],
                                   [row.event_id for row in rows]])


@dataclass(frozen=True, slots=True)
class Alert:
    """What a rule says about a condition; the episode turns it into an event."""

    category: str
    severity: int
    title: str
    geom: Point
    feature_id: int | None
    payload: Mapping[str, Any] = field(default_factory=dict)


def _route(rule: Rule, state: StateRow, alert: Alert) -> tuple[RoutedTo, dict[str, Any]]:
    """Route once per episode and keep it: a fixed sensor does not move, and a
    moving one's event stays with the agency that first received it."""
    stored = state.state.get("route")
    if stored and stored.get("category") == alert.category:
        return RoutedTo(stored["ward_id"], stored["agency_id"]), stored["record"]
    route = rule.router.route(alert.geom, alert.category)
    record = route.as_payload()
    state.state["route"] = {"category": alert.category, "ward_id": route.routed_to.ward_id,
                            "agency_id": route.routed_to.agency_id, "record": record}
    return route.routed_to, record


def open_or_update(rule: Rule, state: StateRow, alert: Alert, started_at: datetime,
                   extra: Mapping[str, Any] | None = None, at: datetime | None = None) -> GeoEvent | None:
    """Raise the episode's event, or update it (same source key) while it lasts.

    An update of a lasting episode is written only when it shows something
    new, and a new value at the same severity at most every
    ``update_interval_s`` of reading time (``at``, the newest reading the
    alert reflects): a station in alert reporting every second must not
    rewrite its event, and push it to every map, on every batch. That
    storm is what made ingestion collapse once 75 air-quality events were
    open (bench/ingest.py, 24 Nov 17:00). A higher severity or another
    category is written at once; the content held back is written by the
    next update after the interval, or by :func:`close` (``extra`` always
    writes). Returns the event written, or None when nothing was written.
    """
    episode = iso(started_at)
    if extra is None and _held_back(rule, state, episode, alert, at):
        return None
    routed, record = _route(rule, state, alert)
    payload = {**alert.payload, **(extra or {}), "rule": rule.name, "subject": state.subject,
               "episode_start": episode, "routing": record}
    draft = EventDraft(kind=rule.name, category=alert.category, geom=alert.geom, occurred_at=started_at,
                       severity=alert.severity, title=alert.title, payload=payload,
                       source_feature_id=alert.feature_id, source_key=episode_key(rule.name, state.subject, started_at),
                       producer=rule.actor, route=routed)
    event, created = raise_event(draft)
    if created:
        logger.info("%s opened event %s (%s) for %s", rule.actor, event.pk, alert.category, state.subject)
    state.event_id = event.pk
    state.state["episode"] = episode
    state.state["shown"] = [_fingerprint(alert, extra), alert.category, alert.severity,
                            iso(at) if at is not None else None]
    return event


def _fingerprint(alert: Alert, extra: Mapping[str, Any] | None) -> str:
    """What an update would show (category, severity, title, place, payload), as a short stable digest."""
    shown = [alert.category, alert.severity, alert.title, alert.geom.coords if alert.geom is not None else None,
             alert.payload, extra]
    text = json.dumps(shown, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _held_back(rule: Rule, state: StateRow, episode: str, alert: Alert, at: datetime | None) -> bool:
    """True when this update of a lasting episode need not be written now (see :func:`open_or_update`).

    The interval is checked first: the fingerprint (a JSON dump and a hash)
    is only worth computing once an update is due.
    """
    shown = state.state.get("shown")
    if state.event_id is None or state.state.get("episode") != episode or not shown or len(shown) != 4:
        return False                      # a new episode, or written before this was recorded
    written, category, severity, written_at = shown
    if category != alert.category or alert.severity > severity:
        return False
    if at is not None and written_at is not None:
        interval = getattr(rule.cfg, "update_interval_s", 0.0) * interval_spread(state.subject)
        if (at - parse_iso(written_at)).total_seconds() < interval:
            return True
    return written == _fingerprint(alert, None)


def interval_spread(subject: str) -> float:
    """A stable factor in [0.5, 1.5) per subject, applied to ``update_interval_s``.

    Events that opened together (75 air stations crossing a clock hour)
    would otherwise all come due in the same batch every interval, and a
    fire alarm arriving then waits behind all their rewrites (the p90 of
    bench/ingest.py's latency phase). The mean interval stays the same.

    >>> interval_spread("38907") == interval_spread("38907") and 0.5 <= interval_spread("1") < 1.5
    True
    """
    return 0.5 + zlib.crc32(subject.encode()) % 1000 / 1000


def close(rule: Rule, state: StateRow, alert: Alert, at: datetime, note: str = "") -> GeoEvent | None:
    """End the episode: record when it cleared, and resolve the event if it is still open.

    An operator may already have resolved or dismissed it; that choice stands.
    """
    started = state.state.get("episode")
    event = None
    if started and state.event_id is not None:   # None: an administrator deleted the event
        event = open_or_update(rule, state, alert, parse_iso(started), extra={"cleared_at": iso(at)})
        if event.status in OPEN_STATUSES:
            event = transition_event(event.pk, EventStatus.RESOLVED, actor_label=rule.actor,
                                     note=note or "Điều kiện đã hết / condition cleared")
    state.event_id = None
    state.state.pop("episode", None)
    state.state.pop("route", None)
    return event


__all__ = ["Alert", "OPEN_STATUSES", "StateRow", "close", "episode_key", "iso", "lock_states", "open_or_update", "parse_iso",
           "save_states"]
