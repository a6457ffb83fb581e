# SPDX-License-Identifier: AGPL-3.0-or-later
"""Source CRS parsing and reprojection to EPSG:4326, the storage CRS.

Vietnamese data often comes in VN-2000: geographic (EPSG:4756), UTM
(EPSG:3405 zone 48N, EPSG:3406 zone 49N) or one of the provincial TM-3
zones (EPSG:5896-5899, 9205-9218; Huế uses TM-3 107-00, EPSG:9214).
VN-2000 sits on the WGS 84 ellipsoid but its datum is offset by about
225 m, so a transformation that ignores the datum ("ballpark") lands every
feature in the wrong street. We therefore:

- pick the operation with PROJ for the city's own area (``area_of_interest``),
  preferring the operations listed in :data:`PREFERRED_OPERATIONS`;
- refuse a CRS PROJ cannot parse, a non-horizontal CRS, and any CRS whose only
  path to WGS 84 is a ballpark offset (an unknown datum), instead of guessing.

>>> describe_crs(parse_crs("EPSG:3405", origin="--crs"))
'EPSG:3405 (VN-2000 / UTM zone 48N)'
>>> reprojection_to_wgs84(parse_crs("EPSG:4326", origin="file")).is_identity
True
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.exceptions import CRSError, ProjError
from pyproj.transformer import TransformerGroup

from twin.errors import ImportRejected

logger = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)

# Operations to use whenever PROJ offers them for the area, best first.
# EPSG:6960 "VN-2000 to WGS 84 (2)" carries the seven parameters of Decision
# 05/2007/QĐ-BTNMT (Ministry of Natural Resources and Environment), the
# country-wide set the law prescribes; EPSG:5194 "(1)" is an academic set
# for two Mekong-delta blocks that PROJ ranks equally there.
PREFERRED_OPERATIONS: tuple[tuple[str, str], ...] = (("EPSG", "6960"),)

# Named in error messages so a user with a bare VN-2000 file knows what to pass.
VN2000_HINT = ("VN-2000: EPSG:4756 (geographic), EPSG:3405/3406 (UTM 48N/49N), "
               "EPSG:9205-9218 and 5896-5899 (TM-3 zones, e.g. EPSG:9214 for Huế)")


def parse_crs(text: str, *, origin: str) -> CRS:
    """Parse a CRS given as ``EPSG:xxxx``, WKT or PROJ string; reject what is unusable.

    Parameters
    ----------
    text:
        The CRS as found in the file or given by the user.
    origin:
        Where it came from (``--crs``, ``the file``), for the error message.

    Returns
    -------
    CRS
        The horizontal CRS (a compound CRS gives its horizontal part).
    """
    try:
        crs = CRS.from_user_input(text)
    except CRSError as exc:
        reason = str(exc).split("(Internal Proj Error:")[-1].strip(" )")
        raise ImportRejected(f"unknown CRS {text!r} from {origin}: {reason}. "
                             f"Pass a known one with --crs EPSG:xxxx ({VN2000_HINT})") from None
    if crs.is_compound:
        crs = next((sub for sub in crs.sub_crs_list if sub.is_geographic or sub.is_projected), crs)
    if not (crs.is_geographic or crs.is_projected):
        raise ImportRejected(f"CRS {describe_crs(crs)} from {origin} is a {crs.type_name}, not a "
                             "horizontal (geographic or projected) CRS")
    return crs


def describe_crs(crs: CRS) -> str:
    """``EPSG:code (name)`` when the CRS is identified, else its name."""
    code = crs.to_epsg(min_confidence=90)
    return f"EPSG:{code} ({crs.name})" if code else repr(crs.name)


@dataclass(frozen=True, slots=True)
class Reprojection:
    """How source coordinates become EPSG:4326; ``transformer`` is None for no-ops."""

    source: CRS
    transformer: Transformer | None
    description: str
    accuracy_m: float | None

    @property
    def is_identity(self) -> bool:
        return self.transformer is None

    def apply(self, geoms: np.ndarray) -> np.ndarray:
        """Reproject an array of shapely geometries (lon/lat out, ``always_xy``).

        Coordinates outside the operation's domain come back as ``inf``; the
        caller reports those rows (see :func:`untransformable`).
        """
        if self.transformer is None:
            return geoms
        transform = self.transformer.transform
        return shapely.transform(geoms, lambda x, y: transform(x, y, errcheck=False), interleaved=False)


def untransformable(geoms: np.ndarray) -> np.ndarray:
    """Indexes of geometries with non-finite coordinates after reprojection."""
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    bounds = shapely.bounds(geoms)
    finite = np.isfinite(bounds).all(axis=1)
    return np.flatnonzero(present & ~finite)


def reprojection_to_wgs84(crs: CRS, area: tuple[float, float, float, float] | None = None) -> Reprojection:
    """Choose the operation from ``crs`` to EPSG:4326 for the city's area.

    Parameters
    ----------
    crs:
        Source CRS (from :func:`parse_crs`).
    area:
        ``(west, south, east, north)`` in degrees, normally the city's extent:
        PROJ ranks candidate operations by how well they cover it.

    Returns
    -------
    Reprojection
        Raises :class:`ImportRejected` when only a ballpark (datum-ignoring)
        operation exists, or none at all.
    """
    if crs.equals(WGS84, ignore_axis_order=True):
        return Reprojection(crs, None, "none (already WGS 84 longitude/latitude)", 0.0)
    aoi = AreaOfInterest(*area) if area else None
    try:
        group = TransformerGroup(crs, WGS84, always_xy=True, area_of_interest=aoi)
    except ProjError as exc:
        raise ImportRejected(f"no transformation from {describe_crs(crs)} to WGS 84: {exc}") from None
    candidates = [t for t in group.transformers if not _is_ballpark(t)]
    if not candidates:
        raise ImportRejected(
            f"CRS {describe_crs(crs)} has no known datum transformation to WGS 84 (PROJ would only "
            f"apply a ballpark offset, off by hundreds of metres for VN-2000 or Hà Nội 1972). Give a CRS "
            f"with a known datum or TOWGS84 parameters with --crs ({VN2000_HINT})")
    chosen = _preferred(candidates)
    accuracy = chosen.accuracy if chosen.accuracy is not None and chosen.accuracy >= 0 else None
    logger.debug("reprojecting %s to EPSG:4326 with %s (accuracy %s m)", describe_crs(crs), chosen.description,
                accuracy if accuracy is not None else "unknown")
    return Reprojection(crs, chosen, chosen.description, accuracy)


def _operation_ids(transformer: Transformer) -> set[tuple[str, str]]:
    ids = set()
    for operation in transformer.operations or ():
        ident = operation.to_json_dict().get("id") or {}
        if ident:
            ids.add((str(ident.get("authority")), str(ident.get("code"))))
    return ids


def _is_ballpark(transformer: Transformer) -> bool:
    return any(op.name.startswith("Ballpark") for op in transformer.operations or ())


def _preferred(candidates: list[Transformer]) -> Transformer:
    """The first candidate using a preferred operation, else PROJ's best."""
    for wanted in PREFERRED_OPERATIONS:
        for transformer in candidates:
            if wanted in _operation_ids(transformer):
                return transformer
    return candidates[0]
