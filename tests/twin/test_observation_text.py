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
