# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin.json_text.compact_json`` gives what ``json.dumps`` gives (compact, UTF-8 kept), or its error."""
from __future__ import annotations

import json
import math

import pytest

from twin.json_text import compact_json


def standard(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("value", [
    {"tên": "Phường Thuận Hoà", "n": 3, "x": 2.5, "ok": True, "list": [1, "a", {"b": []}]},
    {"agency": None, "ward": {"code": "19813"}},
    {"big": 2 ** 70},                    # orjson refuses integers beyond 64 bits
    {1: "int key", "s": "x"},            # orjson refuses non-string keys
    {"bad": math.nan}, {"bad": math.inf}, [-math.inf],
    {"escape": "tab\t\"quote\" \\ \u2028 \x01"}, "text", 1.0e16, 0.1 + 0.2, [],
])
def test_the_text_is_the_standard_librarys(value):
    if _has_nan(value):                  # NaN != NaN: compare the texts
        assert compact_json(value) == standard(value)
    else:
        assert json.loads(compact_json(value)) == json.loads(standard(value))


def test_nan_is_written_as_json_dumps_writes_it_never_turned_into_null():
    assert compact_json({"pm25": math.nan}) == '{"pm25":NaN}'


def test_what_json_refuses_is_refused_the_same_way():
    with pytest.raises(TypeError):
        compact_json({"when": {1, 2}})


def _has_nan(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False
