# SPDX-License-Identifier: AGPL-3.0-or-later
"""The real Hà Nội PM2.5 series, cleaned once, for the air-quality stations to replay.

The AirNow export (``fixtures/air/hanoi_us_embassy_pm25_2016.csv``) is not a
clean time series: rows are out of order, ``-999`` marks a missing hour,
``QC Name`` flags invalid hours (a monitor stuck at 38.0 µg/m³ for two days
in November), a few "Valid" hours are slightly negative (instrument noise
around zero, which the ``AirQualityObserved`` schema refuses), and one hour,
2016-03-13 03:00, appears twice — the local 02:00 hour is missing that
night, the trace of a US daylight-saving switch in the export. Stations
replay only what a real monitor would have reported: valid, non-negative
hours in time order, each hour once (the first row in file order wins).

Pure Python and no Django: the publisher processes load it themselves.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

MISSING = -999.0
# "Date (LT)" is Hà Nội local time, UTC+7 all year (Việt Nam has no daylight saving).
HANOI = timezone(timedelta(hours=7))
TIME_FORMAT = "%Y-%m-%d %I:%M %p"


@dataclass(frozen=True, slots=True)
class SeriesReport:
    """What cleaning removed, so the documentation and the tests can state it."""

    rows: int = 0
    missing: int = 0
    invalid: int = 0
    negative: int = 0
    duplicates: tuple[str, ...] = ()

    @property
    def kept(self) -> int:
        return self.rows - self.missing - self.invalid - self.negative - len(self.duplicates)


@dataclass(frozen=True, slots=True)
class Pm25Series:
    """Hourly PM2.5 in µg/m³, sorted by time, one value per hour."""

    times: tuple[datetime, ...]
    values: tuple[float, ...]
    report: SeriesReport = field(default_factory=SeriesReport)

    def __len__(self) -> int:
        return len(self.values)

    def at(self, step: int) -> float:
        """The value ``step`` hours into the replay, wrapping round at the end of the series."""
        return self.values[step % len(self.values)]


def _classify(row: dict[str, str]) -> tuple[str, float]:
    value = float(row["Raw Conc."])
    if value == MISSING or row["QC Name"] == "Missing":
        return "missing", value
    if row["QC Name"] != "Valid":
        return "invalid", value
    if value < 0:
        return "negative", value
    return "ok", value


def load_series(path: str | Path) -> Pm25Series:
    """Read and clean the AirNow CSV (see the module docstring for what is dropped and why).

    Parameters
    ----------
    path
        An AirNow "Historical Data" CSV with ``Date (LT)``, ``Raw Conc.`` and ``QC Name`` columns.

    Returns
    -------
    Pm25Series
        The cleaned series and a report of what was removed.
    """
    counts = {"missing": 0, "invalid": 0, "negative": 0}
    kept: list[tuple[datetime, int, float]] = []
    rows = 0
    with open(path, newline="", encoding="utf-8") as fh:
        for order, row in enumerate(csv.DictReader(fh)):
            rows += 1
            verdict, value = _classify(row)
            if verdict != "ok":
                counts[verdict] += 1
                continue
            moment = datetime.strptime(row["Date (LT)"], TIME_FORMAT).replace(tzinfo=HANOI)
            kept.append((moment, order, value))
    if not kept:
        raise ValueError(f"{path}: no valid PM2.5 hour to replay")
    kept.sort()   # by time, then file order: the first row of a repeated hour comes first
    times: list[datetime] = []
    values: list[float] = []
    duplicates: list[str] = []
    for moment, _, value in kept:
        if times and times[-1] == moment:
            duplicates.append(moment.isoformat())
            continue
        times.append(moment)
        values.append(value)
    report = SeriesReport(rows=rows, duplicates=tuple(duplicates), **counts)
    return Pm25Series(times=tuple(times), values=tuple(values), report=report)


__all__ = ["HANOI", "Pm25Series", "SeriesReport", "load_series"]
