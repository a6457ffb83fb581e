# SPDX-License-Identifier: AGPL-3.0-or-later
"""A lon/lat point that answers its coordinates, SRID and EWKB from Python.

Why: Django calls GEOS through ``ctypes``, and ``ctypes`` releases the GIL
around every foreign call. Reading ``point.x`` is one such call, ``ewkb`` a
few more, and each is a chance for another thread to take the GIL: the
thread must then wait to get it back, up to the interpreter's switch interval
(5 ms). The report writer (one thread per process, sharing the GIL with the
request threads) read each report's point a dozen times per batch (routing,
the feature row, the inserts, the live message). py-spy found it waiting in
those calls for a third of its time, which made the batches, and so every
citizen's filing, wait.

A :class:`LonLatPoint` is a real GEOS ``Point`` (spatial predicates, ``ptr``,
pickling and copies work as for any point); it only remembers the two numbers
it was built from. Anything that could change it (setting a coordinate or the
SRID, an in-place transform or normalisation) first turns it back into a plain
``Point``, so it never answers stale coordinates.
"""
from __future__ import annotations

import struct

from django.contrib.gis.geos import Point

WGS84 = 4326
# EWKB of a 2-D point with an SRID: little-endian flag, type 1 | SRID flag, SRID, x, y.
_EWKB = struct.Struct("<BIIdd")
_EWKB_POINT_WITH_SRID = 0x20000001


def lonlat_point(lon: float, lat: float) -> Point:
    """A 2-D EPSG:4326 point whose coordinates are kept in Python as well (see the module docstring).

    >>> p = lonlat_point(107.58, 16.46)
    >>> (p.x, p.y, p.srid, p.coords)
    (107.58, 16.46, 4326, (107.58, 16.46))
    """
    point = Point(lon, lat, srid=WGS84)
    point.__class__ = LonLatPoint
    point._lonlat = (float(lon), float(lat))
    return point


def _plain(point: Point) -> Point:
    """Forget the remembered coordinates: the point is about to change."""
    point.__class__ = Point
    return point


class LonLatPoint(Point):
    """Built only by :func:`lonlat_point`."""

    _lonlat: tuple[float, float]

    x = property(lambda self: self._lonlat[0], lambda self, value: setattr(_plain(self), "x", value))
    y = property(lambda self: self._lonlat[1], lambda self, value: setattr(_plain(self), "y", value))
    tuple = coords = property(lambda self: self._lonlat, lambda self, value: setattr(_plain(self), "tuple", value))
    srid = property(lambda self: WGS84, lambda self, value: setattr(_plain(self), "srid", value))
    empty = property(lambda self: False)
    hasz = property(lambda self: False)

    @property
    def ewkb(self) -> memoryview:
        return memoryview(_EWKB.pack(1, _EWKB_POINT_WITH_SRID, WGS84, *self._lonlat))

    def _set_single(self, index, value):
        _plain(self)._set_single(index, value)

    def _set_list(self, length, items):
        _plain(self)._set_list(length, items)

    def transform(self, ct, clone=False):
        if clone:
            return Point.transform(self, ct, clone=True)
        return Point.transform(_plain(self), ct)

    def normalize(self, clone=False):
        if clone:
            return Point.normalize(self, clone=True)
        return Point.normalize(_plain(self))


__all__ = ["LonLatPoint", "WGS84", "lonlat_point"]
