# SPDX-License-Identifier: AGPL-3.0-or-later
"""Map a :class:`~twin.io.readers.SourceTable`'s columns onto :class:`FeatureRow` fields.

One column gives the feature id (so a re-import updates instead of
duplicating), others the name, height and status; every remaining column
becomes a property and the layer's kind validates them. Column names match
case-insensitively. ``last_seen`` is dropped: it is device state written by
ingestion, and our own exports include it.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from twin.errors import ImportRejected
from twin.io.exporters import RESERVED_NAMES
from twin.io.readers import SourceTable
from twin.models import FeatureStatus
from twin.services import FeatureRow

logger = logging.getLogger(__name__)

ID_CANDIDATES = ("id", "fid", "feature_id", "external_id", "code", "osm_id")
NAME_CANDIDATES = ("name", "ten", "title")
HEIGHT_CANDIDATES = ("height_m", "height")
STATUS_CANDIDATES = ("status",)
IGNORED_COLUMNS = frozenset({"last_seen"})


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Which source column feeds which feature field; ``id_source`` says where ids come from."""

    id_field: str | None
    name_field: str | None
    height_field: str | None
    status_field: str | None
    id_source: Literal["field", "fid", "row"]

    def mapped(self) -> set[str]:
        return {f for f in (self.id_field, self.name_field, self.height_field, self.status_field) if f}


def row_label(number: int, external_id: str | None) -> str:
    """The ``row N (id 'X')`` prefix used by every message, as in ``write_features``."""
    return f"row {number} (id {external_id!r})" if external_id else f"row {number}"


def _find(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], option: str) -> str | None:
    by_lower = {c.lower(): c for c in columns}
    if wanted is not None:
        if wanted.lower() not in by_lower:
            raise ImportRejected(f"no column {wanted!r} for {option}; columns: {', '.join(columns) or 'none'}")
        return by_lower[wanted.lower()]
    return next((by_lower[c] for c in candidates if c in by_lower), None)


def resolve_mapping(table: SourceTable, *, id_field: str | None = None, name_field: str | None = None,
                    height_field: str | None = None, status_field: str | None = None) -> tuple[FieldMapping, list[str]]:
    """Choose the columns for id, name, height and status; return the mapping and warnings.

    Without an id column, GeoJSON integer ``id`` members and GeoPackage
    ``fid``s are used (both survive a round trip); otherwise the row number,
    with a warning, because editing the file would then shift every id.
    """
    columns = list(table.columns)
    mapping_id = _find(columns, id_field, ID_CANDIDATES, "--id-field")
    warnings: list[str] = []
    source: Literal["field", "fid", "row"] = "field"
    if mapping_id is None:
        if table.fids is not None and (table.driver == "GPKG" or (
                table.driver == "GeoJSON" and table.fids != list(range(len(table))))):
            source = "fid"
        else:
            source = "row"
            warnings.append(f"no id column in {table.path.name} (looked for {', '.join(ID_CANDIDATES)}): "
                            "features get their row number as id, so re-importing an edited file cannot "
                            "match them; pass --id-field to name one")
    mapping = FieldMapping(
        id_field=mapping_id,
        name_field=_find(columns, name_field, NAME_CANDIDATES, "--name-field"),
        height_field=_find(columns, height_field, HEIGHT_CANDIDATES, "--height-field"),
        status_field=_find(columns, status_field, STATUS_CANDIDATES, "--status-field"),
        id_source=source,
    )
    return mapping, warnings


def _id_text(value: Any) -> str:
    """Ids are text: ``12.0`` from a shapefile's numeric column becomes ``'12'``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _height(value: Any) -> tuple[float | None, str | None]:
    if value is None:
        return None, None
    try:
        height = float(value)
    except (TypeError, ValueError):
        return None, f"height {value!r} is not a number"
    if not math.isfinite(height):
        return None, f"height {value!r} is not a number"
    return height, None


def build_rows(table: SourceTable, geoms: np.ndarray, mapping: FieldMapping, *,
               problems: dict[int, str] | None = None, progress: bool = False) -> tuple[list[FeatureRow], list[str]]:
    """Turn every source row into a :class:`FeatureRow` in EPSG:4326.

    Parameters
    ----------
    geoms:
        The table's geometries already reprojected to EPSG:4326.
    problems:
        Extra per-row geometry problems (index → text), e.g. failed reprojection.

    Returns
    -------
    tuple
        The rows, and the problems found while mapping (``row N (id X): ...``).
    """
    problems = {**table.geometry_problems, **(problems or {})}
    properties_from = [c for c in table.columns if c not in mapping.mapped() and c.lower() not in IGNORED_COLUMNS]
    found: list[str] = []
    rows: list[FeatureRow] = []
    indexes = range(len(table))
    if progress:
        from tqdm import tqdm

        indexes = tqdm(indexes, desc=f"mapping {table.layer_name}", unit=" rows", leave=False)
    keys = {c: _property_key(c) for c in properties_from}
    for i in indexes:
        number = table.row_number(i)
        external_id = _external_id(table, mapping, i)
        height, height_problem = _height(table.columns[mapping.height_field][i] if mapping.height_field else None)
        missing = "no geometry" if geoms[i] is None and i not in problems else None
        for problem in (problems.get(i), missing, height_problem):
            if problem:
                found.append(f"{row_label(number, external_id)}: {problem}")
        name = table.columns[mapping.name_field][i] if mapping.name_field else None
        status = table.columns[mapping.status_field][i] if mapping.status_field else None
        rows.append(FeatureRow(
            external_id=external_id, geom=geoms[i], name="" if name is None else str(name).strip(),
            properties={keys[c]: table.columns[c][i] for c in properties_from if table.columns[c][i] is not None},
            height_m=height, status=FeatureStatus.ACTIVE if status is None else str(status).strip().lower(),
            row=number,
        ))
    return rows, found


def _property_key(column: str) -> str:
    """``prop_status`` → ``status``: undo the renaming our exports do for clashing names.

    Exports write a property named like one of their own columns
    (:data:`~twin.io.exporters.RESERVED_NAMES`) as ``prop_<name>``.

    >>> _property_key("prop_status"), _property_key("prop_x"), _property_key("loai")
    ('status', 'prop_x', 'loai')
    """
    bare = column.removeprefix("prop_")
    return bare if bare != column and bare.lower() in RESERVED_NAMES else column


def _external_id(table: SourceTable, mapping: FieldMapping, index: int) -> str:
    if mapping.id_source == "field" and mapping.id_field:
        return _id_text(table.columns[mapping.id_field][index])
    if mapping.id_source == "fid" and table.fids is not None:
        return str(table.fids[index])
    return str(table.row_number(index))
