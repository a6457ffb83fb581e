# SPDX-License-Identifier: AGPL-3.0-or-later
"""Air-quality index: NowCast concentrations and hourly AQI, as pure functions.

Two methods, chosen by configuration:

``vn_aqi`` (default)
    Việt Nam's VN_AQI, Decision 1459/QĐ-TCMT of the Vietnam Environment
    Administration (12 November 2019), hourly index for PM2.5 and PM10:
    NowCast-weighted concentrations over the last 12 hours, linear
    interpolation between the breakpoints of its Table 1, rounded to an
    integer; the hourly VN_AQI is the largest sub-index.
``us_epa_2024`` / ``us_epa_2012``
    The US-EPA AQI with the AirNow NowCast. ``us_epa_2024`` uses the PM2.5
    breakpoints in force since 6 May 2024 (Good ends at 9.0 µg/m³);
    ``us_epa_2012`` the earlier table (Good ends at 12.0 µg/m³), kept to
    compare with historical AirNow data such as the 2016 Hà Nội series.

Details, sources and what is uncertain: ``docs/rules.md``.

>>> round(nowcast([40, 20, 10]), 2)
30.0
>>> result = hourly_aqi("vn_aqi", {"pm25": [40, 20, 10]})
>>> result.aqi, result.category.name_vi, result.dominant
(60, 'Trung bình', 'pm25')
>>> hourly_aqi("us_epa_2024", {"pm25": [40, 20, 10]}).aqi
90
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NOWCAST_HOURS = 12
MIN_WEIGHT_PM = 0.5   # both VN 1459 and US-EPA floor the PM weight factor at 1/2


@dataclass(frozen=True, slots=True)
class Category:
    """One band of an AQI scale, with its official name and colour."""

    index: int          # 0 = best
    key: str
    name_vi: str
    name_en: str
    low: int            # AQI range, inclusive
    high: int
    colour: str         # hex RGB


@dataclass(frozen=True, slots=True)
class Segment:
    """A breakpoint interval: concentrations c_lo..c_hi map linearly onto i_lo..i_hi."""

    c_lo: float
    c_hi: float
    i_lo: int
    i_hi: int


@dataclass(frozen=True, slots=True)
class Method:
    key: str
    title: str
    segments: Mapping[str, tuple[Segment, ...]]
    categories: tuple[Category, ...]
    decimals: Mapping[str, int | None]   # concentration truncation before lookup (None = none)


@dataclass(frozen=True, slots=True)
class AqiResult:
    """The hourly index of one station, and how it was obtained."""

    aqi: int
    category: Category
    dominant: str
    sub_indices: Mapping[str, int]
    nowcasts: Mapping[str, float]
    method: str
    beyond_scale: bool = False   # a concentration above the table's top; the index is capped at 500


def _continuous(conc: Sequence[float], index: Sequence[int]) -> tuple[Segment, ...]:
    """Segments of a table whose breakpoints are shared by neighbouring bands (VN 1459 style)."""
    return tuple(Segment(conc[i], conc[i + 1], index[i], index[i + 1]) for i in range(len(conc) - 1))


# Decision 1459/QĐ-TCMT, Table 1 (BP_i for I_i = 0, 50, 100, 150, 200, 300, 400, 500), µg/m³.
_VN_INDEX = (0, 50, 100, 150, 200, 300, 400, 500)
VN_PM25 = _continuous((0, 25, 50, 80, 150, 250, 350, 500), _VN_INDEX)
VN_PM10 = _continuous((0, 50, 150, 250, 350, 420, 500, 600), _VN_INDEX)

# Decision 1459/QĐ-TCMT, Table 3: ranges, names and RGB colours.
VN_CATEGORIES = (
    Category(0, "tot", "Tốt", "Good", 0, 50, "#00E400"),
    Category(1, "trung_binh", "Trung bình", "Moderate", 51, 100, "#FFFF00"),
    Category(2, "kem", "Kém", "Poor", 101, 150, "#FF7E00"),
    Category(3, "xau", "Xấu", "Bad", 151, 200, "#FF0000"),
    Category(4, "rat_xau", "Rất xấu", "Very bad", 201, 300, "#8F3F97"),
    Category(5, "nguy_hai", "Nguy hại", "Hazardous", 301, 500, "#7E0023"),
)

# US-EPA, 40 CFR Part 58 Appendix G as amended 2024 (89 FR 16202), Table 2.
EPA_PM25_2024 = (Segment(0.0, 9.0, 0, 50), Segment(9.1, 35.4, 51, 100), Segment(35.5, 55.4, 101, 150),
                 Segment(55.5, 125.4, 151, 200), Segment(125.5, 225.4, 201, 300), Segment(225.5, 325.4, 301, 500))
EPA_PM10_2024 = (Segment(0, 54, 0, 50), Segment(55, 154, 51, 100), Segment(155, 254, 101, 150),
                 Segment(255, 354, 151, 200), Segment(355, 424, 201, 300), Segment(425, 604, 301, 500))
# The table in force 2012–2024 (78 FR 3086), used by AirNow data of those years.
EPA_PM25_2012 = (Segment(0.0, 12.0, 0, 50), Segment(12.1, 35.4, 51, 100), Segment(35.5, 55.4, 101, 150),
                 Segment(55.5, 150.4, 151, 200), Segment(150.5, 250.4, 201, 300), Segment(250.5, 350.4, 301, 400),
                 Segment(350.5, 500.4, 401, 500))
EPA_PM10_2012 = (Segment(0, 54, 0, 50), Segment(55, 154, 51, 100), Segment(155, 254, 101, 150),
                 Segment(255, 354, 151, 200), Segment(355, 424, 201, 300), Segment(425, 504, 301, 400),
                 Segment(505, 604, 401, 500))

EPA_CATEGORIES = (
    Category(0, "good", "Tốt", "Good", 0, 50, "#00E400"),
    Category(1, "moderate", "Trung bình", "Moderate", 51, 100, "#FFFF00"),
    Category(2, "usg", "Kém (nhóm nhạy cảm)", "Unhealthy for Sensitive Groups", 101, 150, "#FF7E00"),
    Category(3, "unhealthy", "Có hại cho sức khỏe", "Unhealthy", 151, 200, "#FF0000"),
    Category(4, "very_unhealthy", "Rất có hại", "Very Unhealthy", 201, 300, "#8F3F97"),
    Category(5, "hazardous", "Nguy hại", "Hazardous", 301, 500, "#7E0023"),
)

METHODS: dict[str, Method] = {
    "vn_aqi": Method("vn_aqi", "VN_AQI (QĐ 1459/QĐ-TCMT)", {"pm25": VN_PM25, "pm10": VN_PM10},
                     VN_CATEGORIES, {"pm25": None, "pm10": None}),
    "us_epa_2024": Method("us_epa_2024", "US-EPA AQI (2024 PM2.5 breakpoints)",
                          {"pm25": EPA_PM25_2024, "pm10": EPA_PM10_2024}, EPA_CATEGORIES, {"pm25": 1, "pm10": 0}),
    "us_epa_2012": Method("us_epa_2012", "US-EPA AQI (2012 PM2.5 breakpoints)",
                          {"pm25": EPA_PM25_2012, "pm10": EPA_PM10_2012}, EPA_CATEGORIES, {"pm25": 1, "pm10": 0}),
}


def get_method(key: str) -> Method:
    """The AQI method named ``key``.

    >>> get_method("vn_aqi").title
    'VN_AQI (QĐ 1459/QĐ-TCMT)'
    """
    try:
        return METHODS[key]
    except KeyError:
        raise ValueError(f"unknown AQI method {key!r}; one of {', '.join(sorted(METHODS))}") from None


def round_half_up(value: float) -> int:
    """Round as the guidance documents do (0.5 goes up), not to even as ``round`` does.

    A tiny epsilon absorbs binary floating error: 6.6 µg/m³ on the 2012 EPA
    scale is exactly 27.5 on paper but 27.4999… in floating point, and AirNow
    reports 28 (found by the Hà Nội 2016 cross-check).

    >>> round_half_up(50.5), round(50.5), round_half_up(6.6 / 12 * 50)
    (51, 50, 28)
    """
    return math.floor(value + 0.5 + 1e-9)


def truncate(value: float, decimals: int | None) -> float:
    """Cut (not round) to ``decimals`` places, as AirNow does before the lookup.

    >>> truncate(35.49, 1), truncate(154.9, 0), truncate(12.345, None)
    (35.4, 154.0, 12.345)
    """
    if decimals is None:
        return value
    factor = 10 ** decimals
    return math.floor(value * factor + 1e-9) / factor


def nowcast(hourly: Sequence[float | None], *, min_weight: float = MIN_WEIGHT_PM) -> float | None:
    """NowCast of the last 12 hourly means; ``hourly[0]`` is the most recent hour.

    ``None`` marks a missing hour. The weight factor is w* = min/max of the
    available hours, floored at ``min_weight`` (1/2 for particles); the
    result is Σ w^(i-1)·c_i / Σ w^(i-1) over the available hours. At least
    two of the three most recent hours must be present, else ``None``.

    Parameters
    ----------
    hourly
        Hourly means, most recent first; only the first 12 are used.
    min_weight
        Floor of the weight factor.

    Returns
    -------
    float | None
        The weighted concentration, or ``None`` when the data are too sparse.

    >>> nowcast([30.0] * 12)
    30.0
    >>> round(nowcast([None, 20, 30]), 6)   # two of the three latest hours: enough
    24.0
    >>> nowcast([None, None, 50, 50]) is None
    True
    >>> nowcast([0, 0, 0])
    0.0
    """
    values = list(hourly[:NOWCAST_HOURS])
    if sum(v is not None for v in values[:3]) < 2:
        return None
    present = [float(v) for v in values if v is not None]
    if min(present) < 0:
        raise ValueError("concentrations cannot be negative")
    high, low = max(present), min(present)
    weight = 1.0 if high == 0 else max(low / high, min_weight)
    num = sum(weight ** i * float(c) for i, c in enumerate(values) if c is not None)
    den = sum(weight ** i for i, c in enumerate(values) if c is not None)
    return num / den


def sub_index(method: Method | str, pollutant: str, concentration: float) -> tuple[int, bool]:
    """The index of one pollutant's (NowCast) concentration, and whether it was capped.

    >>> sub_index("vn_aqi", "pm25", 25), sub_index("vn_aqi", "pm25", 30), sub_index("vn_aqi", "pm10", 200)
    ((50, False), (60, False), (125, False))
    >>> sub_index("us_epa_2024", "pm25", 9.0), sub_index("us_epa_2024", "pm25", 9.1)
    ((50, False), (51, False))
    >>> sub_index("us_epa_2012", "pm25", 10.0), sub_index("us_epa_2024", "pm25", 10.0)
    ((42, False), (53, False))
    >>> sub_index("vn_aqi", "pm25", 650)
    (500, True)
    """
    method = get_method(method) if isinstance(method, str) else method
    if concentration < 0:
        raise ValueError("concentrations cannot be negative")
    segments = method.segments[pollutant]
    value = truncate(concentration, method.decimals.get(pollutant))
    for seg in segments:
        if value <= seg.c_hi:
            # Between two EPA bands (e.g. 9.05 before truncation) cannot happen after
            # truncation; max() keeps the formula safe anyway.
            fraction = (max(value, seg.c_lo) - seg.c_lo) / (seg.c_hi - seg.c_lo)
            return round_half_up(seg.i_lo + fraction * (seg.i_hi - seg.i_lo)), False
    return segments[-1].i_hi, True


def category_of(method: Method | str, aqi: int) -> Category:
    """The band an (integer) AQI falls in.

    >>> [category_of("vn_aqi", v).key for v in (0, 50, 51, 101, 151, 201, 301, 500)]
    ['tot', 'tot', 'trung_binh', 'kem', 'xau', 'rat_xau', 'nguy_hai', 'nguy_hai']
    """
    method = get_method(method) if isinstance(method, str) else method
    for cat in method.categories:
        if aqi <= cat.high:
            return cat
    return method.categories[-1]


def hourly_aqi(method: Method | str, hourly: Mapping[str, Sequence[float | None]]) -> AqiResult | None:
    """The hourly AQI from the last 12 hourly means of each pollutant (most recent first).

    The index is the largest sub-index; the pollutant giving it is
    ``dominant``. Pollutants without enough recent data are left out;
    ``None`` when no pollutant can be computed.

    >>> r = hourly_aqi("vn_aqi", {"pm25": [30, 30, 30], "pm10": [200, 200]})
    >>> r.aqi, r.dominant, dict(r.sub_indices), r.category.key
    (125, 'pm10', {'pm25': 60, 'pm10': 125}, 'kem')
    >>> hourly_aqi("vn_aqi", {"pm25": [None, None, 30]}) is None
    True
    """
    method = get_method(method) if isinstance(method, str) else method
    subs: dict[str, int] = {}
    casts: dict[str, float] = {}
    capped = False
    for pollutant, series in hourly.items():
        if pollutant not in method.segments:
            raise ValueError(f"{method.key} has no breakpoints for {pollutant!r}")
        value = nowcast(series)
        if value is None:
            continue
        casts[pollutant] = value
        subs[pollutant], beyond = sub_index(method, pollutant, value)
        capped = capped or beyond
    if not subs:
        return None
    dominant = max(subs, key=lambda p: (subs[p], p))
    return AqiResult(aqi=subs[dominant], category=category_of(method, subs[dominant]), dominant=dominant,
                     sub_indices=subs, nowcasts=casts, method=method.key, beyond_scale=capped)


__all__ = ["AqiResult", "Category", "METHODS", "Method", "Segment", "category_of", "get_method", "hourly_aqi",
           "nowcast", "round_half_up", "sub_index", "truncate"]
