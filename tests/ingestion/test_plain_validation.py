# SPDX-License-Identifier: AGPL-3.0-or-later
"""The parser's plain-dict validation agrees with the stream models, input by input.

``ingestion.schemas.plain_validator`` validates readings without building a
model per reading; it must accept exactly what the model accepts, and the
parse path must give the same times, values and positions as the models do.
The inputs are every stream's attributes crossed with values of every JSON
type, in range and out of it.
"""
from __future__ import annotations

import copy
import itertools
import json
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from ingestion.config import LimitsConfig
from ingestion.parsing import ParsedMessage, parse_message, validate
from ingestion.schemas import StreamPayload, list_adapter, plain_validator
from ingestion.topics import TopicScheme

STREAMS = sorted({schema for schema in StreamPayload.__subclasses__()}, key=lambda s: s.__name__)
NOW = datetime.now(timezone.utc).replace(microsecond=0)
WHEN = (NOW - timedelta(minutes=1)).isoformat()
POINT = {"type": "Point", "coordinates": [107.58, 16.46]}
PROBES = [None, True, False, 0, -1, 7, 2 ** 70, 0.5, -0.5, 12.25, 1e6, 1e999, -1e999, "", "x", "12", "fire", "active",
          "high", "Point", "2026-11-24T05:00:00Z", "2026-11-24T05:00:00", WHEN, 1764000000, [], [1, 2], [107.5, 16.4],
          {}, {"a": 1}, {"a": {"b": 2}}, POINT, {"type": "Point", "coordinates": [0, 95]}, "a" * 300, "new",
          {"id": "t1", "label": "vehicle", "start_time": WHEN}]


def _base(schema: type[StreamPayload]) -> dict:
    """A minimal valid reading of ``schema``: its required attributes, from the probes."""
    item: dict = {schema.time_field: WHEN}
    for name, info in schema.model_fields.items():
        if info.is_required() and name not in item:
            item[name] = next(v for v in PROBES if _model_accepts(schema, [{**item, name: v}], partial=name))
    return item


def _model_accepts(schema, items, partial: str | None = None) -> bool:
    try:
        list_adapter(schema).validate_python(copy.deepcopy(items))
        return True
    except ValidationError as exc:
        if partial is None:
            return False
        return all(err["loc"][1:2] != (partial,) for err in exc.errors())


def _variants(schema: type[StreamPayload]):
    base = _base(schema)
    yield [base]
    yield [base, 42]
    yield ["not a reading"]
    for name in list(schema.model_fields) + ["unknown_key"]:
        for probe in PROBES:
            yield [{**base, name: probe}]
        without = {k: v for k, v in base.items() if k != name}
        yield [without]
    for a, b in itertools.combinations(list(schema.model_fields)[:6], 2):
        yield [{**base, a: 12.5, b: None}]


PLAIN_STREAMS = [s for s in STREAMS if plain_validator(s) is not None]


def test_only_camera_detections_keep_the_model_path():
    assert sorted(s.__name__ for s in STREAMS if plain_validator(s) is None) == ["CameraDetection"]


@pytest.mark.parametrize("schema", PLAIN_STREAMS, ids=lambda s: s.__name__)
def test_the_plain_validator_accepts_exactly_what_the_model_accepts(schema):
    plain = plain_validator(schema)
    checked = refused = 0
    for items in _variants(schema):
        expected = _model_accepts(schema, items)
        try:
            out = plain.validate_python(copy.deepcopy(items))
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == expected, (schema.__name__, items)
        checked += 1
        refused += not accepted
        if accepted:
            models = list_adapter(schema).validate_python(copy.deepcopy(items))
            for got, model in zip(out, models):
                assert {k: getattr(model, k) for k in got} == got
    assert checked > 100 and 0 < refused < checked


@pytest.mark.parametrize("schema", STREAMS, ids=lambda s: s.__name__)
def test_taken_values_are_the_values_of_the_input(schema):
    for items in _variants(schema):
        if not _model_accepts(schema, items):
            continue
        expected = schema.values_of(copy.deepcopy(items))
        taken = schema.take_values(copy.deepcopy(items))
        assert taken == expected and [list(v) for v in taken] == [list(v) for v in expected], items
        assert [[type(x) for x in v.values()] for v in taken] == [[type(x) for x in v.values()] for v in expected]


@pytest.mark.parametrize("schema", STREAMS, ids=lambda s: s.__name__)
def test_a_refusal_carries_the_models_own_error(schema):
    for items in _variants(schema):
        if _model_accepts(schema, items):
            continue
        with pytest.raises(ValidationError) as ours:
            validate(schema, copy.deepcopy(items))
        with pytest.raises(ValidationError) as models:
            list_adapter(schema).validate_python(copy.deepcopy(items))
        assert str(ours.value) == str(models.value)


def test_a_parsed_message_holds_what_the_models_give():
    scheme, topic = TopicScheme(root="p/city"), "p/city/hue/sensor/s1/air"
    items = [{"dateObserved": (NOW - timedelta(seconds=i)).astimezone(timezone(timedelta(hours=7))).isoformat(),
              "location": {"type": "Point", "coordinates": [107.5 + i / 100, 16.4]}, "pm25": i,
              "type": "AirQualityObserved"} for i in range(5)]
    items[2].pop("location")
    items[3]["pm10"] = None
    payload = json.dumps(items).encode()
    parsed = parse_message(topic, payload, NOW, scheme=scheme, limits=LimitsConfig())
    assert isinstance(parsed, ParsedMessage), parsed
    models = list_adapter(scheme.match(topic).schema).validate_python(json.loads(payload))
    assert parsed.times == tuple(m.observed_at() for m in models)
    assert all(t.tzinfo is timezone.utc for t in parsed.times)
    assert list(parsed.values) == [m.values() for m in models] == [{"pm25": i} for i in range(5)]
    assert [type(v["pm25"]) for v in parsed.values] == [int] * 5          # the input's own numbers
    assert parsed.positions == tuple(None if m.location is None else (m.location.lon, m.location.lat) for m in models)


def test_a_message_without_positions_has_none():
    scheme = TopicScheme(root="p/city")
    payload = json.dumps([{"dateObserved": WHEN, "pm25": 3}, {"dateObserved": WHEN, "pm10": 4.5}]).encode()
    parsed = parse_message("p/city/hue/sensor/s1/air", payload, NOW, scheme=scheme, limits=LimitsConfig())
    assert parsed.positions == () and parsed.values == ({"pm25": 3}, {"pm10": 4.5})
