# SPDX-License-Identifier: AGPL-3.0-or-later
"""Raw message → validated payload, without the database.

The first half of the one parse path (the second half, device and extent,
is :mod:`ingestion.devices`). Live MQTT messages and replayed dead letters
both go through :func:`parse_message`, so a replay is judged exactly like
the original delivery.

A message is all-or-nothing: if one reading of a batched payload is bad the
whole message is a dead letter, so "stored" and "dead-lettered" never split
one message and a replay never half-applies.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

from pydantic import ValidationError

from ingestion.config import LimitsConfig
from ingestion.messages import Rejected
from ingestion.schemas import StreamPayload, list_adapter, plain_validator
from ingestion.topics import TopicScheme, valid_topic_level

MAX_ERRORS_SHOWN = 5


class Reason(StrEnum):
    """Why a message was refused (``DeadLetter.reason``)."""

    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"
    UNKNOWN_TOPIC = "unknown_topic"
    UNKNOWN_STREAM = "unknown_stream"
    INVALID_PAYLOAD = "invalid_payload"
    TIME_OUT_OF_RANGE = "time_out_of_range"
    UNKNOWN_DEVICE = "unknown_device"
    OUT_OF_EXTENT = "out_of_extent"
    STORAGE_ERROR = "storage_error"
    INTERNAL_ERROR = "internal_error"


class ParsedMessage(NamedTuple):
    """A message whose topic and payload are valid; the device is not checked yet.

    A named tuple: one is built per message (see ``ingestion.messages.Reading``).
    """

    topic: str
    payload: bytes
    received_at: datetime
    city: str
    kind: str
    device_id: str
    stream: str
    times: tuple[datetime, ...]                 # the readings' observation times, UTC
    values: tuple[dict[str, Any], ...]          # the readings' measured values, JSON-ready
    positions: tuple[tuple[float, float] | None, ...] = ()   # (lon, lat) per reading; () when none has one
    key: str = ""                               # content hash: the base of every Reading.message_id


def reject(topic: str, payload: bytes, reason: str, detail: str, received_at: datetime,
           size: int | None = None) -> Rejected:
    """A :class:`Rejected` with its human-readable detail and the true payload size."""
    return Rejected(topic=topic, payload=payload, reason=str(reason), received_at=received_at,
                    details={"detail": detail, "size": len(payload) if size is None else size})


def message_key(topic: str, payload: bytes) -> str:
    """Stable id of a message's content, the same on every redelivery.

    >>> message_key("a/b", b"{}")
    '12be4bf52441be52a3e94d62'
    """
    return hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=12).hexdigest()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(payload: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity (RFC 8259 §6 has neither).

    >>> decode_json(b'[1, 2.5]')
    [1, 2.5]
    >>> decode_json(b'{"pm25": NaN}')
    Traceback (most recent call last):
    ...
    ValueError: NaN is not valid JSON
    """
    text = payload.decode("utf-8")
    if text.startswith("\ufeff"):       # as json.loads does: RFC 8259 §8.1 forbids the BOM
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


# One decoder for every message: json.loads(..., parse_constant=...) builds a
# new JSONDecoder per call, a measurable share of a single-reading message.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def describe_validation(exc: ValidationError, many: bool) -> str:
    """pydantic's messages, short: ``[3].pm25: Input should be a valid number``."""
    parts = []
    for err in exc.errors()[:MAX_ERRORS_SHOWN]:
        loc = list(err["loc"])
        index = loc.pop(0) if loc else 0        # every payload is validated as a list
        path = ".".join(str(p) for p in loc)
        where = f"[{index}]" + (f".{path}" if path else "") if many else path
        parts.append(f"{where or 'payload'}: {err['msg']}")
    more = exc.error_count() - MAX_ERRORS_SHOWN
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_message(topic: str, payload: bytes, received_at: datetime, *, scheme: TopicScheme,
                  limits: LimitsConfig) -> ParsedMessage | Rejected:
    """Check size, topic, JSON, schema and timestamps of one message."""
    if len(payload) > limits.max_payload_bytes:
        return reject(topic, payload[:limits.keep_bytes], Reason.OVERSIZED,
                      f"{len(payload)} bytes > limit {limits.max_payload_bytes}", received_at, size=len(payload))
    match = scheme.match(topic)
    if match is None or not valid_topic_level(match.device_id):
        return reject(topic, payload, Reason.UNKNOWN_TOPIC, "topic does not fit the topic scheme", received_at)
    if match.schema is None:
        return reject(topic, payload, Reason.UNKNOWN_STREAM,
                      f"a {match.kind} has no stream {match.stream!r}", received_at)
    try:
        document = decode_json(payload)
    except (ValueError, RecursionError) as exc:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return reject(topic, payload, Reason.MALFORMED_JSON, str(exc)[:500], received_at)
    many = isinstance(document, list)
    items = document if many else [document]
    if not items or len(items) > limits.max_readings_per_message:
        return reject(topic, payload, Reason.INVALID_PAYLOAD,
                      f"a list must hold 1 to {limits.max_readings_per_message} readings", received_at)
    try:
        validated = validate(match.schema, items)
    except ValidationError as exc:
        return reject(topic, payload, Reason.INVALID_PAYLOAD, describe_validation(exc, many), received_at)
    times = _times(validated, match.schema.time_field)
    problem = _time_problem(times, match.schema.time_field, received_at, limits)
    if problem:
        return reject(topic, payload, Reason.TIME_OUT_OF_RANGE, problem, received_at)
    return ParsedMessage(topic=topic, payload=payload, received_at=received_at, city=match.city, kind=match.kind,
                         device_id=match.device_id, stream=match.stream, times=times,
                         values=tuple(match.schema.take_values(items)), positions=_positions(validated),
                         key=message_key(topic, payload))


def validate(schema: type[StreamPayload], items: list[Any]) -> list[dict[str, Any]]:
    """The readings validated by ``schema``, each as a dict of its validated attributes.

    Through :func:`ingestion.schemas.plain_validator` (no model per reading)
    when the schema has one. A refusal is judged again by the model itself,
    so its :class:`ValidationError`, and the dead letter's text, are the
    model's own, word for word. Should the model accept what the plain
    validator refused (they are built to agree), the model's verdict stands.
    """
    plain = plain_validator(schema)
    if plain is not None:
        try:
            return plain.validate_python(items)
        except ValidationError:
            pass
    return [model.__dict__ for model in list_adapter(schema).validate_python(items)]


_ASTIMEZONE = datetime.astimezone
_LOCATION = "location"


def _times(validated: list[dict[str, Any]], field_name: str) -> tuple[datetime, ...]:
    """The readings' observation times in UTC (:meth:`StreamPayload.observed_at`; a loop in C, not Python)."""
    return tuple(map(_ASTIMEZONE, map(itemgetter(field_name), validated), repeat(timezone.utc)))


def _positions(validated: list[dict[str, Any]]) -> tuple[tuple[float, float] | None, ...]:
    """Each reading's (lon, lat), or ``()`` when no reading has a position (most streams)."""
    locations = list(map(dict.get, validated, repeat(_LOCATION)))
    if not any(locations):
        return ()
    return tuple(None if point is None else (point.lon, point.lat) for point in locations)


def _time_problem(times: tuple[datetime, ...], field_name: str, received_at: datetime, limits: LimitsConfig) -> str:
    """A reading from far in the future (bad clock) or past (stale buffer) is refused.

    Checked against the time the message was *received*, so a replay judges
    the reading as it was judged when it arrived.
    """
    latest = received_at + timedelta(seconds=limits.max_future_s)
    earliest = received_at - timedelta(seconds=limits.max_age_s)
    if min(times) >= earliest and max(times) <= latest:
        return ""
    for index, moment in enumerate(times):
        if moment > latest:
            return f"reading {index}: {field_name} {moment.isoformat()} is in the future"
        if moment < earliest:
            return f"reading {index}: {field_name} {moment.isoformat()} is older than {limits.max_age_s} s"
    return ""


__all__ = ["ParsedMessage", "Reason", "decode_json", "message_key", "parse_message", "reject", "validate"]
