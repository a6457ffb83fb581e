# SPDX-License-Identifier: AGPL-3.0-or-later
"""Dead letters: store, list and replay refused messages.

Every refused message is kept with its raw bytes (the first ``keep_bytes``
of an oversized one, with the true size), topic, arrival time and reason.
A fingerprint of topic and bytes makes storing idempotent: a dead letter
redelivered after a crash is kept once.

Replay feeds the stored bytes through the same parse path as live traffic
(:func:`ingestion.parsing.parse_message`, then device and extent checks),
judged against the original arrival time, and records the outcome on the
dead letter. It never creates a new dead letter.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ingestion.messages import Reading, Rejected
from ingestion.models import DeadLetter

logger = logging.getLogger(__name__)

REPLAY_CHUNK = 500


def fingerprint(topic: str, payload: bytes, size: int) -> str:
    """SHA-256 of topic, bytes and true size: the same message always gives the same value."""
    digest = hashlib.sha256(topic.encode("utf-8", "surrogateescape"))
    digest.update(b"\0" + bytes(payload) + b"\0" + str(size).encode())
    return digest.hexdigest()


def _text(value: object, limit: int) -> str:
    # PostgreSQL text cannot hold NUL; the raw bytes are kept in `payload` anyway.
    return str(value).replace("\x00", "\\0")[:limit]


def store_dead_letters(rejected: Sequence[Rejected]) -> int:
    """Store refused messages (one statement); returns how many were given.

    A message already stored (same fingerprint) is skipped, so a redelivery
    after a crash does not duplicate it.
    """
    if not rejected:
        return 0
    rows: dict[str, DeadLetter] = {}
    for item in rejected:
        size = int(item.details.get("size", len(item.payload)))
        key = fingerprint(item.topic, item.payload, size)
        rows.setdefault(key, DeadLetter(
            topic=_text(item.topic, 500), payload=bytes(item.payload), payload_size=size,
            reason=_text(item.reason, 80), detail=_text(item.details.get("detail", ""), 5000),
            received_at=item.received_at, fingerprint=key,
        ))
    with transaction.atomic():
        DeadLetter.objects.bulk_create(rows.values(), ignore_conflicts=True)
    for item in rejected:
        logger.info("dead letter %s on %s: %s", item.reason, item.topic, str(item.details.get("detail", ""))[:200])
    return len(rejected)


def list_dead_letters(*, reason: str | None = None, ids: Iterable[int] | None = None, topic_prefix: str | None = None,
                      include_replayed: bool = False) -> QuerySet[DeadLetter]:
    """Dead letters, newest first; by default only those not yet replayed successfully."""
    letters = DeadLetter.objects.all()
    if not include_replayed:
        letters = letters.filter(replayed_at__isnull=True)
    if reason:
        letters = letters.filter(reason=reason)
    if ids is not None:
        letters = letters.filter(pk__in=list(ids))
    if topic_prefix:
        letters = letters.filter(topic__startswith=topic_prefix)
    return letters.order_by("-received_at", "-pk")


@dataclass(slots=True)
class ReplayReport:
    """What a replay did: per dead letter, ``ok: N reading(s)`` or ``rejected: reason: detail``."""

    results: dict[int, str] = field(default_factory=dict)
    stored: int = 0
    readings: int = 0

    @property
    def failed(self) -> int:
        return len(self.results) - self.stored


def replay_dead_letters(letters: QuerySet[DeadLetter], *, cfg=None, rules=None) -> ReplayReport:
    """Re-parse dead letters; store what now passes, record every outcome.

    Parameters
    ----------
    letters
        Which dead letters (see :func:`list_dead_letters`), oldest replayed first.
    cfg
        An :class:`ingestion.config.IngestConfig` (topic root, limits); the
        loaded configuration by default.
    rules
        The rules hook to run on stored readings (``None``: no rules).
    """
    from ingestion.config import load_config
    from ingestion.devices import DeviceDirectory

    cfg = cfg or load_config()
    directory = DeviceDirectory(cfg.devices)
    report = ReplayReport()
    chunk: list[DeadLetter] = []
    for letter in letters.order_by("received_at", "pk").iterator(chunk_size=REPLAY_CHUNK):
        chunk.append(letter)
        if len(chunk) >= REPLAY_CHUNK:
            _replay_chunk(chunk, cfg, directory, rules, report)
            chunk = []
    if chunk:
        _replay_chunk(chunk, cfg, directory, rules, report)
    return report


def _outcome(letter: DeadLetter, cfg, directory) -> list[Reading] | Rejected:
    """The same parse path as live traffic, judged at the original arrival time."""
    from ingestion.parsing import Reason, parse_message, reject
    from ingestion.topics import TopicScheme

    payload = bytes(letter.payload)
    if letter.payload_size > len(payload):
        return reject(letter.topic, payload, Reason.OVERSIZED,
                      f"only the first {len(payload)} of {letter.payload_size} bytes were kept", letter.received_at)
    scheme = TopicScheme(root=cfg.topics.root)
    parsed = parse_message(letter.topic, payload, letter.received_at, scheme=scheme, limits=cfg.limits)
    if isinstance(parsed, Rejected):
        return parsed
    return directory.resolve(parsed)


def _replay_chunk(chunk: list[DeadLetter], cfg, directory, rules, report: ReplayReport) -> None:
    from ingestion.sink import RETRYABLE, commit, run_rules

    outcomes = [(letter, _outcome(letter, cfg, directory)) for letter in chunk]
    readings = [r for _, outcome in outcomes if not isinstance(outcome, Rejected) for r in outcome]
    now = timezone.now()
    try:
        with transaction.atomic():
            commit(readings)
            _record(outcomes, now, report)
    except RETRYABLE:
        raise
    except Exception as exc:
        # One letter the database refuses must not block the others.
        logger.warning("replaying %d dead letters together failed (%s); one by one", len(chunk), exc)
        readings = []
        for letter, outcome in outcomes:
            try:
                with transaction.atomic():
                    commit([] if isinstance(outcome, Rejected) else outcome)
                    _record([(letter, outcome)], now, report)
                readings.extend([] if isinstance(outcome, Rejected) else outcome)
            except RETRYABLE:
                raise
            except Exception as inner:
                DeadLetter.objects.filter(pk=letter.pk).update(replay_result=_text(f"error: {inner}", 200))
                report.results[letter.pk] = f"error: {inner}"
    run_rules(rules, readings)


def _record(outcomes: list[tuple[DeadLetter, list[Reading] | Rejected]], now: datetime, report: ReplayReport) -> None:
    for letter, outcome in outcomes:
        if isinstance(outcome, Rejected):
            letter.replay_result = _text(f"rejected: {outcome.reason}: {outcome.details.get('detail', '')}", 200)
        else:
            letter.replayed_at = now
            letter.replay_result = f"ok: {len(outcome)} reading(s)"
            report.stored += 1
            report.readings += len(outcome)
        report.results[letter.pk] = letter.replay_result
    DeadLetter.objects.bulk_update([letter for letter, _ in outcomes], ["replayed_at", "replay_result"])


__all__ = ["ReplayReport", "fingerprint", "list_dead_letters", "replay_dead_letters", "store_dead_letters"]
