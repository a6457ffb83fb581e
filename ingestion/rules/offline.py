# SPDX-License-Identifier: AGPL-3.0-or-later
"""Offline timers: a device silent for longer than its reporting period plus a grace.

The condition comes from the *absence* of data, so a timer finds it:
``twin check-offline`` (or :func:`ingestion.rules.engine.run_timers`) looks
at every monitored device. A device's last contact is its
``DeviceLiveness.last_seen``, which the ingestion sink writes in the
transaction that stores the readings, before any rule runs; this rule
writes no contact time of its own. (``state.last_reading`` in rule-state
rows left by older versions still counts, as the later of the two.) A device
never heard from is not watched. When ``now − last contact > period + grace``
an ``offline`` event is opened (one per device and silence); the first
reading that ``evaluate()`` sees from the device ends it, or failing that
the next timer pass that finds ``last_seen`` recent.

Period and grace come, most specific first, from ``devices`` (by device id),
then ``kinds["<layer kind>.<sensor type>"]``, then ``kinds["<layer kind>"]``;
only layer kinds named in ``kinds`` are watched.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import connection, transaction
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ingestion.messages import Reading
from ingestion.rules.base import Rule, RuleConfig
from ingestion.rules.context import BatchContext, Device, load_devices
from ingestion.rules.episodes import Alert, close, iso, lock_states, open_or_update, parse_iso, save_states
from twin.models import last_seen_sql
from twin.services.sql import bound_cursor

logger = logging.getLogger(__name__)


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period_s: float = Field(gt=0, description="How often the device reports, in seconds.")
    grace_s: float = Field(default=0, ge=0, description="Extra silence tolerated before it counts as offline.")

    @property
    def limit(self) -> timedelta:
        return timedelta(seconds=self.period_s + self.grace_s)


class OfflineConfig(RuleConfig):
    kinds: dict[str, Period] = Field(
        default_factory=lambda: {"sensor": Period(period_s=300, grace_s=120), "camera": Period(period_s=60,
                                 grace_s=60), "boat": Period(period_s=600, grace_s=300)},
        description="Defaults per layer kind ('sensor') or kind and sensor type ('sensor.air_quality').")
    devices: dict[str, Period] = Field(default_factory=dict, description="Overrides per device id.")
    ignore_statuses: tuple[str, ...] = Field(default=("inactive", "maintenance", "retired"), description="Feature "
                                             "statuses that are not watched.")
    category: str = Field(default="device_offline", min_length=1, description="Event category (routing).")
    severity: int = Field(default=2, ge=1, le=5, description="Event severity.")
    interval_s: float = Field(default=60, gt=0, le=3600, description="How often `twin check-offline` checks.")
    seen_resolution_s: float = Field(default=5, ge=0, le=300, description=(
        "A worker looks for a device's open offline event only when the device's newest reading moved by this "
        "much since the worker last looked (0: every batch). A device heard from seconds ago cannot have been "
        "found silent, and silences are judged in minutes."))

    @model_validator(mode="after")
    def _kinds_named(self) -> OfflineConfig:
        if not self.kinds:
            raise ValueError("kinds must name at least one layer kind to watch")
        return self

    def period_for(self, device_id: str, kind: str, subtype: str | None) -> Period | None:
        """The most specific period for a device (None: its kind is not watched)."""
        return (self.devices.get(device_id) or (self.kinds.get(f"{kind}.{subtype}") if subtype else None)
                or self.kinds.get(kind))


_MONITORED_SQL = """
SELECT f.id, f.external_id, l.kind, f.properties->>'sensor_type', {last_seen},
       rs.state->>'last_reading', rs.event_id
  FROM twin_feature f
  JOIN twin_layer l ON l.id = f.layer_id
  LEFT JOIN ingestion_rulestate rs ON rs.rule = %(rule)s AND rs.subject = f.id::text
 WHERE l.kind = ANY(%(kinds)s) AND NOT (f.status = ANY(%(ignore)s)) {only}
"""

# Which of a batch's devices have an offline event open: a read (the usual answer is none), bound arrays.
_OPEN_SQL = """
SELECT subject FROM ingestion_rulestate
 WHERE rule = %(rule)s AND subject = ANY(%(subjects)b::text[]) AND event_id IS NOT NULL
"""


class OfflineRule(Rule):
    name = "offline"
    config_model = OfflineConfig
    supports_timers = True
    wants_by_shape = True       # wants() reads kind, stream, value names, position only
    cfg: OfflineConfig

    def __init__(self, cfg: OfflineConfig, router) -> None:
        super().__init__(cfg, router)
        # The layer kinds watched, once: ``wants`` runs for every reading.
        self._watched = frozenset(k.split(".", 1)[0] for k in cfg.kinds)
        # subject → newest reading time this process looked for an open event at (committed); see evaluate().
        self._noted: dict[str, datetime] = {}

    def wants(self, reading: Reading) -> bool:
        return reading.kind in self._watched

    def evaluate(self, readings: Sequence[Reading], ctx: BatchContext) -> None:
        """End the offline event of any device heard from; a batch without one writes nothing.

        The readings' contact time is already stored: the sink wrote
        ``last_seen`` with them, before the rules ran. What is left is one
        read for the batch's devices with an event open; only those rows are
        locked, closed and written back.

        A device this process looked at less than ``seen_resolution_s`` of
        reading time ago is not looked at again: the timer opens an event
        only ``period + grace`` (minutes) after the device's ``last_seen``,
        and the sink had written that reading's time (within its own
        resolution) before the look. On a busy stream this skips the read
        for most batches. An event the timer opened concurrently with a look
        (see :meth:`tick`) is still found by the next look or ended by the
        next timer pass.
        """
        newest: dict[str, datetime] = {}
        for reading in readings:
            key = str(reading.feature_id)
            newest[key] = max(newest.get(key, reading.time), reading.time)
        resolution, noted = timedelta(seconds=self.cfg.seen_resolution_s), self._noted
        subjects = sorted(s for s, at in newest.items() if s not in noted or at - noted[s] >= resolution)
        if not subjects:
            return
        transaction.on_commit(lambda: noted.update((s, max(newest[s], noted.get(s, newest[s]))) for s in subjects))
        with bound_cursor() as cursor:         # bound: arrays not escaped into the SQL text (every batch)
            cursor.execute(_OPEN_SQL, {"rule": self.name, "subjects": subjects})
            open_now = [subject for (subject,) in cursor.fetchall()]
        if not open_now:
            return
        closed = []
        for subject, row in lock_states(self.name, open_now).items():
            device = ctx.device(int(subject))
            if row.event_id is None or device is None:      # the timer ended it meanwhile; the feature is gone
                continue
            close(self, row, self._alert(device, row.state), newest[subject],
                  note="Thiết bị đã gửi dữ liệu trở lại / device reporting again")
            closed.append(row)
        save_states(closed)

    def tick(self, now: datetime) -> int:
        """Open events for devices gone silent, close those heard from; returns the number of changes.

        The verdicts are surveyed twice: once without locks, then again for
        the due devices under their rule-state locks, so a ``last_seen`` the
        sink committed in between is seen and no event is opened for it.
        One interleaving is left: the sink commits a reading's ``last_seen``
        after that second survey, and :meth:`evaluate` reads the open events
        before this transaction commits, so it finds none (readers do not
        wait for the locks) and the event stays open although the device
        reported. It heals without a reading: the next look by ``evaluate``
        (the device's next reading ``seen_resolution_s`` later) ends it, and
        at the latest the next pass here finds ``last_seen`` recent and ends it.
        """
        due = self._survey(now)
        if not due:
            return 0
        states = lock_states(self.name, (str(fid) for fid in due))
        devices = load_devices(due)
        changes = 0
        for fid, (silent, last, period) in self._survey(now, only=sorted(due)).items():   # again, under the locks
            row, device = states[str(fid)], devices.get(fid)
            if device is None or silent == (row.event_id is not None):
                continue
            if silent:
                row.state.update(last_contact=iso(last), period_s=period.period_s, grace_s=period.grace_s)
                open_or_update(self, row, self._alert(device, row.state), last + period.limit)
            else:
                close(self, row, self._alert(device, row.state), last,
                      note="Thiết bị đã liên lạc lại / device heard from again")
            changes += 1
        save_states(states.values())
        return changes

    def _survey(self, now: datetime, only: list[int] | None = None) -> dict[int, tuple[bool, datetime, Period]]:
        """Devices whose offline verdict differs from their open event (all, or ``only`` these)."""
        kinds = sorted({k.split(".", 1)[0] for k in self.cfg.kinds})
        sql = _MONITORED_SQL.format(last_seen=last_seen_sql("f"),
                                    only="AND f.id = ANY(%(only)s)" if only is not None else "")
        with connection.cursor() as cursor:
            cursor.execute(sql, {"rule": self.name, "kinds": kinds, "ignore": list(self.cfg.ignore_statuses),
                                 "only": only or []})
            rows = cursor.fetchall()
        due: dict[int, tuple[bool, datetime, Period]] = {}
        for fid, external_id, kind, subtype, last_seen, last_reading, event_id in rows:
            period = self.cfg.period_for(external_id, kind, subtype)
            contacts = [t for t in (last_seen, parse_iso(last_reading) if last_reading else None) if t is not None]
            if period is None or not contacts:
                continue
            last = max(contacts)
            silent = now - last > period.limit
            if silent != (event_id is not None) or only is not None:
                due[fid] = (silent, last, period)
        return due

    def _alert(self, device: Device, st: dict) -> Alert:
        label = device.label
        return Alert(category=self.cfg.category, severity=self.cfg.severity, geom=device.position(),
                     title=f"Thiết bị mất kết nối: {label} / Device offline: {label}", feature_id=device.id,
                     payload={"device": device.external_id, "last_contact": st.get("last_contact"),
                              "period_s": st.get("period_s"), "grace_s": st.get("grace_s")})


__all__ = ["OfflineConfig", "OfflineRule", "Period"]
