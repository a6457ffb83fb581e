# SPDX-License-Identifier: AGPL-3.0-or-later
"""Read vector files into a :class:`SourceTable`: geometries plus JSON-safe columns.

GeoJSON, GeoPackage, shapefiles (plain or zipped) are read with pyogrio
(GDAL); CSV with lon/lat columns with the standard library, so every bad
cell can be reported with its row. Readers do not reproject and do not
validate against a layer: they only say what the file holds, in the file's
own CRS (``SourceTable.crs``, None when the file does not say).

Row numbers are 1-based positions of features in the file (for CSV, of
records after the header), the same numbers every error message uses.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import pyogrio.raw
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from twin.errors import ImportRejected, InvalidInput, PayloadTooLarge

logger = logging.getLogger(__name__)

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")
SUPPORTED_SUFFIXES = (*VECTOR_SUFFIXES, ".zip", ".csv")
LON_CANDIDATES = ("lon", "lng", "long", "longitude", "kinh_do", "kinhdo", "x", "easting")
LAT_CANDIDATES = ("lat", "latitude", "vi_do", "vido", "y", "northing")
# Layer metadata key our GeoPackage export uses to list columns holding JSON text.
JSON_COLUMNS_KEY = "citytwin_json_columns"
READ_CHUNK = 50_000
CHUNKED_DRIVERS = frozenset({"GPKG", "ESRI Shapefile"})
_INTEGER_TYPES = {"OFTInteger", "OFTInteger64"}


@dataclass(slots=True)
class SourceTable:
    """What a file holds, before mapping to features.

    ``geoms`` is an object array of shapely geometries (None where a row has
    none); ``columns`` maps each attribute to JSON-safe values aligned with
    it; ``geometry_problems`` maps a row index to why it has no geometry.
    """

    path: Path
    layer_name: str
    driver: str
    crs: str | None
    geoms: np.ndarray
    columns: dict[str, list[Any]]
    fids: list[int] | None = None
    geometry_problems: dict[int, str] = field(default_factory=dict)
    row_numbers: list[int] | None = None

    def row_number(self, index: int) -> int:
        """The 1-based row a feature came from (CSV counts skipped blank records too)."""
        return self.row_numbers[index] if self.row_numbers is not None else index + 1

    def __len__(self) -> int:
        return len(self.geoms)


@dataclass(frozen=True, slots=True)
class CsvOptions:
    """How to find coordinates in a CSV file (columns are auto-detected when None)."""

    lon_col: str | None = None
    lat_col: str | None = None


def check_size(path: Path, limit: int) -> None:
    """Refuse a file (or a zip's unpacked content) larger than ``limit`` bytes before reading it.

    Zips are checked on their declared uncompressed size too, so a small
    archive cannot unpack into gigabytes (a "zip bomb").
    """
    if not path.is_file():
        raise InvalidInput(f"file not found: {path}")
    sizes = {path.name: path.stat().st_size}
    suffix = path.suffix.lower()
    if suffix == ".shp":  # the .dbf beside it is often the bigger part
        sizes[f"{path.name} with its .dbf/.shx"] = sum(p.stat().st_size for p in path.parent.glob(path.stem + ".*")
                                                        if p.is_file())
    if suffix == ".zip" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            sizes[f"{path.name} unpacked"] = sum(info.file_size for info in archive.infolist())
    for what, size in sizes.items():
        if limit and size > limit:
            raise PayloadTooLarge(f"{what} is {_mb(size)}, over the import limit of {_mb(limit)} "
                                  f"(IMPORT_MAX_BYTES={limit}); nothing was read")


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MiB" if size >= 1_048_576 else f"{size} bytes"


def read_source(path: Path, *, source_layer: str | None = None, encoding: str | None = None,
                csv_options: CsvOptions | None = None, progress: bool = False) -> SourceTable:
    """Read ``path`` by its extension.

    Parameters
    ----------
    path:
        A ``.geojson``/``.json``, ``.gpkg``, ``.shp``, ``.zip`` (shapefiles or
        other files inside) or ``.csv`` file.
    source_layer:
        Layer (GeoPackage table, shapefile name in a zip); required when there are several.
    encoding:
        Text encoding of attributes when the file does not declare it (shapefile ``.cpg``).
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInput(f"unsupported file type {suffix or path.name!r}; "
                           f"expected one of {', '.join(SUPPORTED_SUFFIXES)}")
    if suffix == ".csv":
        return read_csv(path, options=csv_options or CsvOptions(), encoding=encoding, progress=progress)
    if suffix == ".zip":
        vsi_path, layer = _zip_source(path, source_layer)
    else:
        vsi_path, layer = str(path), _choose_layer(str(path), path.name, source_layer)
    return _read_vector(path, vsi_path, layer, encoding=encoding, progress=progress)


def _list_layers(vsi_path: str, shown: str) -> list[str]:
    try:
        return [str(name) for name, _ in pyogrio.list_layers(vsi_path)]
    except (DataSourceError, DataLayerError) as exc:
        raise ImportRejected(f"cannot read {shown}: {_gdal_message(exc)}") from None


def _choose_layer(vsi_path: str, shown: str, source_layer: str | None) -> str:
    """The one layer to read; several layers need ``--source-layer``."""
    names = _list_layers(vsi_path, shown)
    if source_layer is not None:
        if source_layer not in names:
            raise ImportRejected(f"{shown} has no layer {source_layer!r}; its layers: {', '.join(names)}")
        return source_layer
    if not names:
        raise ImportRejected(f"{shown} holds no vector layer")
    if len(names) > 1:
        raise ImportRejected(f"{shown} holds {len(names)} layers ({', '.join(names)}); "
                             "choose one with --source-layer")
    return names[0]


def _zip_source(path: Path, source_layer: str | None) -> tuple[str, str]:
    """Find the data inside a zip: shapefiles, GeoPackages or GeoJSON, in any folder.

    GDAL only looks at the zip's top folder, but zipping a folder puts the
    files in ``folder/ten_lop.shp``; so we list members ourselves and open
    the chosen one through ``/vsizip/``. macOS ``._`` resource files are skipped.
    """
    with zipfile.ZipFile(path) as archive:
        members = [name for name in archive.namelist()
                   if PurePosixPath(name).suffix.lower() in VECTOR_SUFFIXES
                   and not PurePosixPath(name).name.startswith(("._", "."))]
    sources: dict[str, tuple[str, str]] = {}
    for member in members:
        vsi_path = f"/vsizip/{path.resolve()}/{member}"
        if PurePosixPath(member).suffix.lower() == ".shp":
            sources[PurePosixPath(member).stem] = (vsi_path, PurePosixPath(member).stem)
        else:
            for name in _list_layers(vsi_path, f"{path.name}/{member}"):
                sources[name] = (vsi_path, name)
    if not sources:
        raise ImportRejected(f"{path.name} holds no shapefile, GeoPackage or GeoJSON")
    if source_layer is not None:
        if source_layer not in sources:
            raise ImportRejected(f"{path.name} has no layer {source_layer!r}; its layers: {', '.join(sources)}")
        return sources[source_layer]
    if len(sources) > 1:
        raise ImportRejected(f"{path.name} holds {len(sources)} layers ({', '.join(sources)}); "
                             "choose one with --source-layer")
    return next(iter(sources.values()))


def _gdal_message(exc: Exception) -> str:
    return str(exc).split("; It might help")[0]


def _read_vector(path: Path, vsi_path: str, layer: str, *, encoding: str | None, progress: bool) -> SourceTable:
    """Read a GDAL layer in chunks (a progress bar for big files), keeping types faithful."""
    try:
        info = pyogrio.read_info(vsi_path, layer=layer, encoding=encoding)
        chunks = list(_read_frames(vsi_path, layer, info, encoding=encoding, progress=progress))
    except (DataSourceError, DataLayerError) as exc:
        raise ImportRejected(f"cannot read {path.name}: {_gdal_message(exc)}") from None
    frames = [frame for frame, _ in chunks]
    json_columns = set(json.loads((info.get("layer_metadata") or {}).get(JSON_COLUMNS_KEY) or "[]"))
    kinds = {name: (ogr_type, subtype, name in json_columns)
             for name, ogr_type, subtype in zip(info["fields"], info["ogr_types"], info["ogr_subtypes"], strict=True)}
    geoms = np.concatenate([np.asarray(f.geometry.array, dtype=object) for f in frames]) if frames else \
        np.empty(0, dtype=object)
    columns = {name: [value for frame in frames for value in _column(frame[name], *kinds[name])]
               for name in kinds}
    fids = [int(i) for frame in frames for i in frame.index.tolist()]
    problems, offset = {}, 0
    for frame, unreadable in chunks:
        problems.update({offset + i: "the geometry cannot be read (unclosed ring or too few points?)"
                         for i in unreadable})
        offset += len(frame)
    return SourceTable(path=path, layer_name=layer, driver=str(info["driver"]), crs=info.get("crs"),
                       geoms=geoms, columns=columns, fids=fids, geometry_problems=problems)


def _read_frames(vsi_path: str, layer: str, info: dict, *, encoding: str | None,
                 progress: bool) -> Iterable[tuple[Any, list[int]]]:
    """Yield (GeoDataFrame of at most :data:`READ_CHUNK` features, positions of unreadable geometries).

    Shapefiles and GeoPackages are read in chunks; GeoJSON in one pass
    (GDAL would parse it again for every chunk).
    """
    total = int(info.get("features") or 0)
    chunked = total > READ_CHUNK and info.get("driver") in CHUNKED_DRIVERS
    bar = _progress(total, f"reading {layer}") if progress else None
    for start in range(0, total, READ_CHUNK) if chunked else [0]:
        window = {"skip_features": start, "max_features": READ_CHUNK if chunked else None}
        with warnings.catch_warnings():
            # pyogrio warns when a JSON-typed column holds plain text (_cell handles both),
            # GDAL when it meets an unclosed ring (reported below, per row).
            warnings.filterwarnings("ignore", message="Could not parse column", category=UserWarning)
            warnings.filterwarnings("ignore", message="Non closed ring", category=RuntimeWarning)
            frame = pyogrio.read_dataframe(vsi_path, layer=layer, encoding=encoding, force_2d=True,
                                           fid_as_index=True, datetime_as_string=True, on_invalid="ignore", **window)
            yield frame, _unreadable(vsi_path, layer, frame, window)
        if bar is not None:
            bar.update(len(frame))
    if bar is not None:
        bar.close()


def _unreadable(vsi_path: str, layer: str, frame: Any, window: dict) -> list[int]:
    """Positions where the file has a geometry that shapely refused (as opposed to a null one).

    Only read again when some geometry is missing, which is rare.
    """
    missing = np.flatnonzero(frame.geometry.isna().to_numpy())
    if not len(missing):
        return []
    _, _, wkb, _ = pyogrio.raw.read(vsi_path, layer=layer, columns=[], force_2d=True, **window)
    return [int(i) for i in missing if wkb[i] is not None]


def _progress(total: int | None, label: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit=" rows", leave=False)


def _column(series: pd.Series, ogr_type: str, subtype: str, is_json: bool) -> list[Any]:
    """A column's values made JSON-safe; numeric columns are converted whole (fast path)."""
    if series.dtype.kind == "f":
        values = series.to_numpy()
        missing = np.isnan(values)
        if ogr_type in _INTEGER_TYPES:  # pandas made NaN-holding integers (and booleans) floats
            cast = bool if subtype == "OFSTBoolean" else int
            return [None if m else cast(v) for v, m in zip(values.tolist(), missing.tolist(), strict=True)]
        return [None if m else v for v, m in zip(values.tolist(), missing.tolist(), strict=True)]
    if series.dtype.kind in "iub":
        return series.tolist()
    if ogr_type == "OFTString" and not is_json and subtype != "OFSTJSON":
        return [v if type(v) is str else json_safe(v) for v in series.tolist()]
    return [_cell(v, ogr_type, subtype, is_json) for v in series.tolist()]


def _cell(value: Any, ogr_type: str, subtype: str, is_json: bool) -> Any:
    """One attribute value made JSON-safe, with GDAL's type restored.

    pandas turns nullable integers and booleans into floats with NaN; the
    OGR field type says what they were. Columns our export marked as JSON
    (or GDAL typed as JSON) are parsed back into lists and objects.
    """
    value = json_safe(value)
    if value is None:
        return None
    if ogr_type in _INTEGER_TYPES and isinstance(value, float) and value.is_integer():
        return bool(value) if subtype == "OFSTBoolean" else int(value)
    if (is_json or subtype == "OFSTJSON") and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def json_safe(value: Any) -> Any:
    """Python/JSON-friendly form of a value from pandas, numpy or GDAL.

    >>> json_safe(np.float64("nan")) is None, json_safe(np.int64(3)), json_safe(np.array([1, 2]))
    (True, 3, [1, 2])
    >>> json_safe(datetime(2025, 7, 1, 8, 30))
    '2025-07-01T08:30:00'
    """
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    return value


def read_csv(path: Path, *, options: CsvOptions, encoding: str | None = None, progress: bool = False) -> SourceTable:
    """Read a CSV with one point per record from its longitude/latitude columns.

    The delimiter (comma, semicolon, tab) is sniffed; a UTF-8 BOM (Excel)
    is skipped. Empty cells are null; cells that hold a JSON list or object
    are parsed. Bad or missing coordinates are recorded per row in
    ``geometry_problems``, never guessed.
    """
    try:
        return _read_csv(path, options, encoding or "utf-8-sig", progress)
    except UnicodeDecodeError as exc:
        raise ImportRejected(f"{path.name} is not valid {encoding or 'UTF-8'} text (byte {exc.start}); "
                             "pass its encoding with --encoding (e.g. cp1258 for Windows Vietnamese)") from None


def _read_csv(path: Path, options: CsvOptions, encoding: str, progress: bool) -> SourceTable:
    with path.open(newline="", encoding=encoding) as handle:
        sample = handle.read(65536)
        handle.seek(0)
        try:
            # Only the delimiter is sniffed: the Sniffer misjudges quoting on
            # CRLF files, and every spreadsheet writes Excel-style quotes.
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
        reader = csv.reader(handle, csv.excel, delimiter=delimiter)
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise ImportRejected(f"{path.name} is empty")
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise ImportRejected(f"{path.name} repeats column(s) {', '.join(map(repr, repeated))}")
        lon_col = _coordinate_column(header, options.lon_col, LON_CANDIDATES, "longitude", "--lon-col")
        lat_col = _coordinate_column(header, options.lat_col, LAT_CANDIDATES, "latitude", "--lat-col")
        rows: Iterable[list[str]] = reader
        if progress:
            from tqdm import tqdm

            rows = tqdm(reader, desc=f"reading {path.name}", unit=" rows", leave=False)
        return _csv_table(path, header, rows, lon_col, lat_col)


def _coordinate_column(header: list[str], wanted: str | None, candidates: tuple[str, ...], what: str,
                       option: str) -> int:
    lowered = [h.lower() for h in header]
    if wanted is not None:
        if wanted.lower() not in lowered:
            raise ImportRejected(f"no column {wanted!r} ({option}); columns: {', '.join(header)}")
        return lowered.index(wanted.lower())
    for candidate in candidates:
        if candidate in lowered:
            return lowered.index(candidate)
    raise ImportRejected(f"no {what} column found (looked for {', '.join(candidates)}); "
                         f"name it with {option}. Columns: {', '.join(header)}")


def _csv_table(path: Path, header: list[str], rows: Iterable[list[str]], lon_col: int, lat_col: int) -> SourceTable:
    names = [name for i, name in enumerate(header) if i not in (lon_col, lat_col)]
    columns: dict[str, list[Any]] = {name: [] for name in names}
    geoms: list[Any] = []
    numbers: list[int] = []
    problems: dict[int, str] = {}
    for number, record in enumerate(rows, start=1):
        if not any(cell.strip() for cell in record):
            continue
        numbers.append(number)
        record = record + [""] * (len(header) - len(record))
        lon, lon_problem = _number(record[lon_col], header[lon_col])
        lat, lat_problem = _number(record[lat_col], header[lat_col])
        if lon_problem or lat_problem:
            problems[len(geoms)] = "; ".join(p for p in (lon_problem, lat_problem) if p)
            geoms.append(None)
        else:
            geoms.append(shapely.Point(lon, lat))
        for i, name in enumerate(header):
            if name in columns:
                columns[name].append(_csv_value(record[i]))
    array = np.empty(len(geoms), dtype=object)
    array[:] = geoms
    return SourceTable(path=path, layer_name=path.stem, driver="CSV", crs=None, geoms=array, columns=columns,
                       geometry_problems=problems, row_numbers=numbers)


def _number(text: str, column: str) -> tuple[float | None, str | None]:
    text = text.strip()
    if not text:
        return None, f"no value in {column!r}"
    try:
        # No decimal commas: "561,583" could be a thousands separator; refuse, don't guess.
        value = float(text)
    except ValueError:
        return None, f"{column} {text!r} is not a number"
    if not math.isfinite(value):
        return None, f"{column} {text!r} is not a number"
    return value, None


def _csv_value(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    if text[0] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
