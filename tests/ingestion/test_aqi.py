# SPDX-License-Identifier: AGPL-3.0-or-later
"""AQI functions: VN_AQI (Decision 1459/QĐ-TCMT) and US-EPA with NowCast, against hand-computed values and real data."""
from __future__ import annotations

import csv
import doctest
from pathlib import Path

import pytest

from ingestion.rules import aqi
from ingestion.rules.aqi import category_of, hourly_aqi, nowcast, sub_index

HANOI = Path(__file__).resolve().parents[3] / "shared" / "data" / "air" / "hanoi_us_embassy_pm25_2016.csv"


def test_the_module_doctests_pass():
    result = doctest.testmod(aqi)
    assert result.attempted > 10 and result.failed == 0


# --- NowCast -------------------------------------------------------------------------------------------------------

def test_nowcast_of_a_steady_series_is_the_series_value():
    assert nowcast([42.0] * 12) == pytest.approx(42.0)


def test_nowcast_floors_the_weight_at_one_half_when_the_air_changes_fast():
    # min/max = 10/80 < 0.5 → w = 0.5: (80 + 40·0.5 + 10·0.25) / (1 + 0.5 + 0.25)
    assert nowcast([80, 40, 10]) == pytest.approx((80 + 20 + 2.5) / 1.75)


def test_nowcast_uses_min_over_max_as_the_weight_when_the_air_is_steady():
    # min/max = 30/40 = 0.75 → w = 0.75
    w = 0.75
    assert nowcast([40, 30, 35, 40]) == pytest.approx((40 + 30 * w + 35 * w**2 + 40 * w**3) / (1 + w + w**2 + w**3))


def test_nowcast_skips_missing_hours_and_only_reads_the_last_twelve():
    series = [20, None, 20, 20] + [None] * 8 + [999]    # the 13th hour is ignored
    assert nowcast(series) == pytest.approx(20.0)


@pytest.mark.parametrize("series", [[None, None, 10], [None, 10, None, 10], []])
def test_nowcast_needs_two_of_the_three_latest_hours(series):
    assert nowcast(series) is None


def test_nowcast_with_all_twelve_hours_at_weight_one_half_matches_the_decisions_shorthand():
    # QĐ 1459 writes Nowcast = Σ (1/2)^i c_i for w = 1/2; with 12 hours that is our normalised sum × (1 − 2⁻¹²).
    series = [100, 10, 50, 20, 80, 5, 60, 30, 40, 90, 70, 15]
    shorthand = sum(0.5 ** i * c for i, c in enumerate(series, start=1))
    assert nowcast(series) * (1 - 0.5 ** 12) == pytest.approx(shorthand)


# --- sub-indices and categories --------------------------------------------------------------------------------

@pytest.mark.parametrize("pollutant, conc, expected", [
    ("pm25", 0, 0), ("pm25", 25, 50), ("pm25", 37.5, 75), ("pm25", 50, 100), ("pm25", 65, 125), ("pm25", 80, 150),
    ("pm25", 115, 175), ("pm25", 150, 200), ("pm25", 200, 250), ("pm25", 300, 350), ("pm25", 425, 450),
    ("pm25", 500, 500), ("pm10", 50, 50), ("pm10", 100, 75), ("pm10", 385, 250), ("pm10", 460, 350),
    ("pm10", 600, 500),
])
def test_vn_aqi_interpolates_between_the_breakpoints_of_table_1(pollutant, conc, expected):
    assert sub_index("vn_aqi", pollutant, conc) == (expected, False)


@pytest.mark.parametrize("conc, expected_2024, expected_2012", [
    (9.0, 50, 38), (12.0, 56, 50), (12.1, 57, 51), (35.4, 100, 100), (35.5, 101, 101), (55.4, 150, 150),
    (55.5, 151, 151), (125.4, 200, 187), (150.4, 226, 200), (225.4, 300, 275), (325.4, 500, 375),
])
def test_us_epa_pm25_2024_moves_the_good_moderate_line_from_12_to_9(conc, expected_2024, expected_2012):
    assert sub_index("us_epa_2024", "pm25", conc)[0] == expected_2024
    assert sub_index("us_epa_2012", "pm25", conc)[0] == expected_2012


def test_us_epa_truncates_pm25_to_a_tenth_before_the_lookup():
    assert sub_index("us_epa_2024", "pm25", 35.49) == sub_index("us_epa_2024", "pm25", 35.4) == (100, False)


def test_concentrations_beyond_the_table_are_capped_at_500_and_flagged():
    assert sub_index("vn_aqi", "pm25", 720) == (500, True)
    assert hourly_aqi("us_epa_2024", {"pm25": [400, 400, 400]}).beyond_scale


def test_negative_concentrations_are_refused():
    with pytest.raises(ValueError):
        sub_index("vn_aqi", "pm25", -1)
    with pytest.raises(ValueError):
        nowcast([-999, 10, 10])


@pytest.mark.parametrize("value, key, name_vi, colour", [
    (50, "tot", "Tốt", "#00E400"), (51, "trung_binh", "Trung bình", "#FFFF00"), (150, "kem", "Kém", "#FF7E00"),
    (151, "xau", "Xấu", "#FF0000"), (300, "rat_xau", "Rất xấu", "#8F3F97"), (301, "nguy_hai", "Nguy hại", "#7E0023"),
])
def test_vn_categories_carry_the_decisions_names_and_colours(value, key, name_vi, colour):
    cat = category_of("vn_aqi", value)
    assert (cat.key, cat.name_vi, cat.colour) == (key, name_vi, colour)


def test_the_hourly_index_is_the_worst_pollutant_and_names_it():
    result = hourly_aqi("vn_aqi", {"pm25": [60, 60, 60], "pm10": [100, 100, 100]})
    assert (result.aqi, result.dominant, dict(result.sub_indices)) == (117, "pm25", {"pm25": 117, "pm10": 75})


def test_an_unknown_method_or_pollutant_is_refused():
    with pytest.raises(ValueError, match="unknown AQI method"):
        hourly_aqi("who_2021", {"pm25": [1, 1]})
    with pytest.raises(ValueError, match="no breakpoints for 'o3'"):
        hourly_aqi("vn_aqi", {"o3": [1, 1]})


# --- the real Hà Nội 2016 series ------------------------------------------------------------------------------

def test_every_aqi_of_the_hanoi_2016_file_is_the_2012_epa_index_of_its_24_hour_average():
    """AirNow's own numbers: the file's AQI column, recomputed from its 24-hour average column."""
    with HANOI.open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["AQI"] != "-999"]
    assert len(rows) == 7669
    mismatched = [(r["Date (LT)"], r["AQI"]) for r in rows
                  if sub_index("us_epa_2012", "pm25", float(r["24-hr. Midpoint Avg. Conc."]))[0] != int(r["AQI"])]
    assert mismatched == []


def test_the_2024_breakpoints_would_have_rated_hanoi_2016_worse_more_often():
    with HANOI.open(encoding="utf-8") as handle:
        averages = [float(r["24-hr. Midpoint Avg. Conc."]) for r in csv.DictReader(handle) if r["AQI"] != "-999"]
    good_2012 = sum(category_of("us_epa_2012", sub_index("us_epa_2012", "pm25", c)[0]).index == 0 for c in averages)
    good_2024 = sum(category_of("us_epa_2024", sub_index("us_epa_2024", "pm25", c)[0]).index == 0 for c in averages)
    assert good_2024 < good_2012
