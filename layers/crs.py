# SPDX-License-Identifier: AGPL-3.0-or-later
"""Output coordinate reference systems: the ``crs`` parameter of OGC API – Features Part 2.

Planners in Vietnam work in VN-2000 (cadastre, construction permits, the
national topographic maps), so ``/items?crs=…`` returns coordinates in any
CRS the server offers (``settings.LAYERS_OUTPUT_CRS``), in that CRS's own
axis order (EPSG:4326 and VN-2000 geographic are latitude first, as Part 2
requires), with the ``Content-Crs`` header naming it. Storage stays CRS84.

The datum shift matters: PostGIS left to itself may pick another VN-2000
operation than the one the law prescribes, so the target is handed to
``ST_Transform`` as a PROJ definition carrying the seven parameters of the
operation :func:`twin.io.crs.reprojection_to_wgs84` prefers (EPSG:6960,
Decision 05/2007/QĐ-BTNMT); the result matches pyproj's transformer to the
millimetre (tests/layers/test_ogc_crs.py).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from pyproj import CRS
from pyproj.exceptions import CRSError

from layers.errors import InvalidInput
from twin.errors import ImportRejected
from twin.io.crs import reprojection_to_wgs84

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84H = "http://www.opengis.net/def/crs/OGC/0/CRS84h"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"

# Offered unless settings.LAYERS_OUTPUT_CRS says otherwise: WGS 84 (lat/lon), Web Mercator,
# WGS 84 / UTM 48N and 49N, and VN-2000: geographic, UTM 48N/49N, TM-3 zones (EPSG:9205-9218
# and 5896-5899, which cover every province).
DEFAULT_OUTPUT_CRS = (4326, 3857, 32648, 32649, 4756, 3405, 3406, *range(5896, 5900), *range(9205, 9219))
GEOGRAPHIC_DIGITS, PROJECTED_DIGITS = 7, 3  # ~1 cm either way
STORAGE_CRS = CRS84


@dataclass(frozen=True, slots=True)
class OutputCrs:
    """How to write geometries in one CRS: the PROJ target, axis order and decimals."""

    uri: str
    proj: str | None = None  # None: no transformation (the storage datum), at most an axis swap
    lat_first: bool = False
    digits: int = GEOGRAPHIC_DIGITS

    def geometry_sql(self, column: str) -> str:
        """SQL for ``column`` (EPSG:4326 storage) in this CRS and axis order."""
        expression = column if self.proj is None else f"ST_Transform({column}, '{self.proj}')"
        return f"ST_FlipCoordinates({expression})" if self.lat_first else expression

    @property
    def header(self) -> str:
        """The ``Content-Crs`` header value (Part 2 §6.2.2)."""
        return f"<{self.uri}>"


STORAGE = OutputCrs(CRS84)


def offered_crs() -> tuple[str, ...]:
    """The CRS URIs ``crs`` accepts, CRS84 first (the collections' ``crs`` list)."""
    codes = getattr(settings, "LAYERS_OUTPUT_CRS", DEFAULT_OUTPUT_CRS)
    return (CRS84, *(EPSG_URI.format(code=int(c)) for c in codes))


def parse_output_crs(raw: str | None) -> OutputCrs:
    """``crs``: one of :func:`offered_crs` (400 otherwise, naming them)."""
    uri = parse_crs("crs", raw)
    if uri not in offered_crs():
        codes = ", ".join(u.rsplit("/", 1)[1] for u in offered_crs()[1:])
        raise InvalidInput(f"parameter 'crs': {uri} is not offered here; use {CRS84} or EPSG {codes}")
    return output_crs(uri)


@lru_cache(maxsize=64)
def output_crs(uri: str) -> OutputCrs:
    """The :class:`OutputCrs` for an offered URI (cached: building it asks PROJ's database)."""
    if uri == CRS84:
        return STORAGE
    crs = CRS.from_epsg(int(uri.rsplit("/", 1)[1]))
    lat_first = crs.axis_info[0].direction.lower() in {"north", "south"}
    digits = GEOGRAPHIC_DIGITS if crs.is_geographic else PROJECTED_DIGITS
    return OutputCrs(uri, _proj_definition(crs), lat_first, digits)


def _proj_string(crs: CRS) -> str:
    with warnings.catch_warnings():  # "you will likely lose information": we add the datum shift back
        warnings.simplefilter("ignore", UserWarning)
        return crs.to_proj4()


def _proj_definition(crs: CRS) -> str | None:
    """A PROJ string for ``crs`` whose datum shift is the preferred operation's, if it has one."""
    try:
        chosen = reprojection_to_wgs84(crs)
    except ImportRejected as exc:
        raise InvalidInput(f"parameter 'crs': {exc.message}") from None
    if chosen.is_identity:
        return None
    definition = re.sub(r"\s*\+(towgs84|type)=\S*", "", _proj_string(crs))
    helmert = next((op for op in (chosen.transformer.operations if chosen.transformer else ()) if op.towgs84),
                   None)
    if helmert is not None:
        values = list(helmert.towgs84)
        if helmert.method_name.lower().startswith("coordinate frame"):
            values[3:6] = [-v for v in values[3:6]]  # +towgs84 uses the position-vector convention
        definition += " +towgs84=" + ",".join(repr(v) for v in values)
    if "'" in definition:  # never: PROJ strings hold no quotes; it is inlined as an SQL literal
        raise InvalidInput("parameter 'crs': this CRS cannot be used")
    return definition


def parse_crs(name: str, raw: str | None) -> str:
    """A CRS URI (or ``EPSG:n`` / ``[EPSG:n]`` / URN) normalised to its OGC URI; unknown → 400."""
    if raw is None or not raw.strip():
        return CRS84
    text = raw.strip().strip("[]")
    if re.fullmatch(r"(?i)(https?://www\.opengis\.net/def/crs/OGC/(1\.3|0)/CRS84h?|urn:ogc:def:crs:OGC:1\.3:CRS84"
                    r"|OGC:CRS84h?|CRS84h?)", text):
        return CRS84
    match = re.fullmatch(r"(?i)(?:https?://www\.opengis\.net/def/crs/EPSG/0/|urn:ogc:def:crs:EPSG:[0-9.]*:|EPSG:)"
                         r"(\d{1,6})", text)
    if match is None:
        raise InvalidInput(f"parameter {name!r}: unknown or unsupported CRS; use an OGC CRS URI such as "
                           f"{CRS84} or {EPSG_URI.format(code=3857)}")
    code = int(match.group(1))
    epsg_crs(EPSG_URI.format(code=code), name)
    return EPSG_URI.format(code=code)


@lru_cache(maxsize=64)
def epsg_crs(uri: str, name: str = "crs") -> CRS:
    code = int(uri.rsplit("/", 1)[1])
    try:
        return CRS.from_epsg(code)
    except CRSError:
        raise InvalidInput(f"parameter {name!r}: EPSG:{code} is not a known CRS") from None
