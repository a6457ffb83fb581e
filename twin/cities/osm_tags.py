# SPDX-License-Identifier: AGPL-3.0-or-later
"""Reading OpenStreetMap tag values: heights, levels, one-way, speeds, lanes.

Pure functions over tag strings, following the OSM wiki's value formats
(https://wiki.openstreetmap.org/wiki/Map_features/Units). Anything that
does not parse returns ``None`` so the caller falls back to its rule.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

FEET = 0.3048
MILE_KMH = 1.609344
MAX_HEIGHT_M = 1000.0

_HEIGHT = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(m|meters?|metres?|ft|feet|')?\s*$", re.IGNORECASE)
_FEET_INCHES = re.compile(r"^\s*(\d+)\s*'\s*(\d+(?:\.\d+)?)\s*\"\s*$")
_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph|knots)?\s*$", re.IGNORECASE)

HeightSource = Literal["height_tag", "levels", "default"]


def parse_height(value: str | None) -> float | None:
    """Metres from an OSM ``height`` value; ``None`` when it is not a length.

    >>> parse_height("12"), parse_height("12 m"), parse_height("12.5m"), parse_height("7,5")
    (12.0, 12.0, 12.5, 7.5)
    >>> parse_height("10 ft"), parse_height("6'6\\""), parse_height("tall"), parse_height("0")
    (3.048, 1.981, None, None)
    """
    if not value:
        return None
    inches = _FEET_INCHES.match(value)
    if inches:
        metres = (int(inches.group(1)) * 12 + float(inches.group(2))) * 0.0254
        return round(metres, 3) if 0 < metres <= MAX_HEIGHT_M else None
    match = _HEIGHT.match(value)
    if not match:
        return None
    metres = float(match.group(1).replace(",", "."))
    if (match.group(2) or "m").lower() in {"ft", "feet", "'"}:
        metres = round(metres * FEET, 3)
    return metres if 0 < metres <= MAX_HEIGHT_M else None


def parse_levels(value: str | None) -> float | None:
    """Number of storeys from ``building:levels``; ``None`` when not a plain number.

    >>> parse_levels("3"), parse_levels("2.5"), parse_levels("3;4"), parse_levels("-1")
    (3.0, 2.5, None, None)
    """
    if not value:
        return None
    try:
        levels = float(value.strip().replace(",", "."))
    except ValueError:
        return None
    return levels if 0 < levels <= 200 else None


def building_height(tags: Mapping[str, str], *, metres_per_level: float,
                    default_m: float) -> tuple[float, HeightSource, float | None]:
    """Height of a building: ``height``, else ``building:levels`` × storey height, else the default.

    Returns ``(metres, source, levels)``.

    >>> building_height({"height": "12 m", "building:levels": "5"}, metres_per_level=3.5, default_m=7)
    (12.0, 'height_tag', 5.0)
    >>> building_height({"building:levels": "4"}, metres_per_level=3.5, default_m=7)
    (14.0, 'levels', 4.0)
    >>> building_height({"height": "?"}, metres_per_level=3.5, default_m=7)
    (7, 'default', None)
    """
    levels = parse_levels(tags.get("building:levels"))
    height = parse_height(tags.get("height"))
    if height is not None:
        return height, "height_tag", levels
    if levels is not None and levels * metres_per_level <= MAX_HEIGHT_M:
        return round(levels * metres_per_level, 3), "levels", levels
    return default_m, "default", levels


def oneway(tags: Mapping[str, str]) -> Literal[-1, 0, 1]:
    """Direction of travel: 1 along the way, -1 against it, 0 both ways.

    ``oneway=yes|1|true`` → 1 and ``-1|reverse`` → -1; without a usable tag,
    roundabouts and motorways are one-way by definition (OSM wiki, Key:oneway).

    >>> oneway({"oneway": "yes"}), oneway({"oneway": "-1"}), oneway({"highway": "motorway"})
    (1, -1, 1)
    >>> oneway({"junction": "roundabout", "oneway": "no"}), oneway({"junction": "roundabout"}), oneway({})
    (0, 1, 0)
    """
    value = (tags.get("oneway") or "").strip().lower()
    if value in {"yes", "1", "true"}:
        return 1
    if value in {"-1", "reverse"}:
        return -1
    if value in {"no", "0", "false"}:
        return 0
    if tags.get("junction") in {"roundabout", "circular"} or tags.get("highway") == "motorway":
        return 1
    return 0


def maxspeed_kmh(value: str | None) -> float | None:
    """Speed limit in km/h from ``maxspeed`` (plain km/h, or with a unit); zone codes give ``None``.

    >>> maxspeed_kmh("50"), maxspeed_kmh("30 mph"), maxspeed_kmh("VN:urban"), maxspeed_kmh("none")
    (50.0, 48.3, None, None)
    """
    match = _SPEED.match(value or "")
    if not match:
        return None
    speed = float(match.group(1))
    unit = (match.group(2) or "km/h").lower()
    if unit == "mph":
        speed = round(speed * MILE_KMH, 1)
    elif unit == "knots":
        speed = round(speed * 1.852, 1)
    return speed if 0 < speed <= 200 else None


def lanes(value: str | None) -> int | None:
    """Lane count from ``lanes``; ``None`` unless a whole number from 1 to 20.

    >>> lanes("2"), lanes("1.5"), lanes("2;3")
    (2, None, None)
    """
    value = (value or "").strip()
    return int(value) if value.isdigit() and 1 <= int(value) <= 20 else None


def matches(tags: Mapping[str, str], selector: Mapping[str, list[str] | str]) -> tuple[str, str] | None:
    """The first ``(key, value)`` of ``tags`` selected by ``selector``, else ``None``.

    A selector value ``"*"`` takes any value but ``no``.

    >>> matches({"amenity": "clinic"}, {"amenity": ["hospital", "clinic"]})
    ('amenity', 'clinic')
    >>> matches({"building": "no"}, {"building": "*"}) is None
    True
    """
    for key, wanted in selector.items():
        value = tags.get(key)
        if value is None:
            continue
        if (wanted == "*" and value != "no") or (wanted != "*" and value in wanted):
            return key, value
    return None
