# SPDX-License-Identifier: AGPL-3.0-or-later
"""The COPY text of stored readings: orjson's speed with json's rules (NaN refused, any integer kept)."""
from __future__ import annotations

import doctest
import json

import pytest

from twin.services import observations
from twin.services.observations import _encode_values


def test_doctests_of_the_observation_copy_text_hold():
    result = doctest.testmod(observations)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_value_json_cannot_hold_is_refused_not_stored_as_null(bad):
    with pytest.raises(ValueError):
        _encode_values({"pm25": bad})


def test_integers_beyond_64_bits_and_real_nulls_are_kept():
    assert json.loads(_encode_values({"n": 2**70, "gap": None, "ok": 1})) == {"n": 2**70, "gap": None, "ok": 1}


def test_unicode_and_control_characters_come_out_as_json_writes_them():
    values = {"ghi_chu": "Cầu Trường Tiền\tđông", "nested": {"a": [1, 2.5]}}
    assert json.loads(_encode_values(values)) == values
    assert "Cầu Trường Tiền" in _encode_values(values) and "\t" not in _encode_values(values)


def _rows():
    from datetime import datetime, timedelta, timezone

    from twin.services import ObservationRow

    utc, t = timezone.utc, datetime(2026, 11, 24, 5, 30, tzinfo=timezone.utc)
    return [ObservationRow(7, t, {"pm25": 12.5}),
            ObservationRow(7, t.replace(microsecond=1), {"pm25": 12, "note": "a\\b\tc", "vi": "Huế"}, 107.5, 16.4),
            ObservationRow(8, datetime(1, 1, 1, tzinfo=utc), {"nested": {"a": [1, 2.5, None]}}, None, 16.4),
            ObservationRow(9, datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=utc), {}, 107, 16),
            ObservationRow(10, t + timedelta(microseconds=123456), {"ok": True, "gap": None})]


def test_a_batch_copy_text_is_the_rows_copy_lines_joined():
    rows = _rows()
    assert observations._copy_text(rows) == "".join(map(observations._copy_line, rows)).encode()


def test_times_in_other_zones_keep_their_exact_offset_in_the_copy_text():
    from datetime import timedelta, timezone

    odd = timezone(timedelta(hours=5, seconds=30))       # an offset with seconds (old local mean times)
    rows = [row._replace(time=row.time.astimezone(odd if i % 2 else timezone(timedelta(hours=7))))
            for i, row in enumerate(_rows()[:2] + _rows()[4:])]
    text = observations._copy_text(rows)
    assert text == "".join(map(observations._copy_line, rows)).encode() and b"+05:00:30" in text


def test_a_batch_holding_what_orjson_refuses_is_written_as_json_writes_it():
    rows = [row._replace(values={"n": 2**70}) if i == 1 else row for i, row in enumerate(_rows())]
    assert observations._copy_text(rows) == "".join(map(observations._copy_line, rows))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_batch_with_a_value_json_cannot_hold_is_refused(bad):
    rows = [row._replace(values={"pm25": bad}) if i == 3 else row for i, row in enumerate(_rows())]
    with pytest.raises(ValueError):
        observations._copy_text(rows)


def test_ingestion_readings_are_copied_as_their_observation_rows():
    from ingestion.messages import Reading
    from twin.services import ObservationRow

    readings = [Reading(r.feature_id, "d", "sensor", "air", r.time, r.values, r.lon, r.lat, "hue", "k:0")
                for r in _rows()]
    as_rows = [ObservationRow(r.feature_id, r.time, r.values, r.lon, r.lat) for r in readings]
    assert observations._copy_text(readings) == observations._copy_text(as_rows)


def test_utc_times_are_rendered_as_isoformat_renders_them():
    import random
    from datetime import datetime, timedelta, timezone

    rnd, epoch = random.Random(5), datetime(1970, 1, 1, tzinfo=timezone.utc)
    times = [epoch + timedelta(microseconds=rnd.randrange(-62135596800 * 10**6, 253402300799 * 10**6))
             for _ in range(200_000)]
    times += [t.replace(microsecond=0) for t in times[:1000]] + [datetime(1, 1, 1, tzinfo=timezone.utc)]
    assert observations._time_texts(times) == [t.isoformat().encode() for t in times]
