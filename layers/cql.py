# SPDX-License-Identifier: AGPL-3.0-or-later
"""CQL2 filters (OGC API – Features Part 3) to a parameterised SQL fragment.

pygeofilter parses CQL2 text and CQL2 JSON into an AST; this module walks
that AST *itself*, against a whitelist:

- property names must be queryables of the collection; their SQL comes from
  the registry, never from the request;
- every literal is a bound parameter with an explicit cast, never
  interpolated into SQL text, and must have the queryable's type (so the
  database never sees ``height_m = 'abc'``);
- only the operators below are translated; anything else is a 400
  ``OperationNotSupported`` naming the operator.

Supported: ``= <> < <= > >=``, ``LIKE``/``ILIKE`` (``%`` and ``_``
wildcards, ``\\`` escape), ``IN``, ``BETWEEN``, ``IS [NOT] NULL``,
``AND``/``OR``/``NOT``, ``CASEI``, ``S_INTERSECTS``, ``S_WITHIN``,
``S_CONTAINS``, ``S_DISJOINT``, ``S_TOUCHES``, ``S_CROSSES``,
``S_OVERLAPS``, ``S_EQUALS`` and ``BBOX`` with WKT or GeoJSON literals (in
``filter-crs``), and ``T_BEFORE``, ``T_AFTER``, ``T_DURING``, ``T_EQUALS``,
``T_INTERSECTS`` on date-time queryables.

>>> fields = {"name": Queryable("name", "string", "f.name"), "height_m": Queryable("height_m", "number", "f.height_m")}
>>> parse_filter("name LIKE 'Ch%' AND height_m > 10", None, None, fields)
SqlFragment(sql='((f.name LIKE %s::text) AND (f.height_m > %s::double precision))', params=('Ch%', 10))
"""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from pygeofilter import ast, values

from layers.errors import InvalidInput, NotSupported
from layers.query import CRS84, EPSG_URI, Queryable, SqlFragment, parse_crs, safe_name, to_crs84

logger = logging.getLogger(__name__)

MAX_FILTER_CHARS = 20_000
MAX_NODES = 2_000
MAX_DEPTH = 100
MAX_IN_VALUES = 1_000
MAX_VERTICES = 10_000
LANGUAGES = ("cql2-text", "cql2-json")

_COMPARISONS = {ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
                ast.GreaterThan: ">", ast.GreaterEqual: ">="}
_SPATIAL = {ast.GeometryIntersects: "ST_Intersects", ast.GeometryDisjoint: "ST_Disjoint",
            ast.GeometryContains: "ST_Contains", ast.GeometryWithin: "ST_Within",
            ast.GeometryTouches: "ST_Touches", ast.GeometryCrosses: "ST_Crosses",
            ast.GeometryOverlaps: "ST_Overlaps", ast.GeometryEquals: "ST_Equals"}
_CASTS = {"string": "text", "number": "double precision", "boolean": "boolean", "datetime": "timestamptz"}
_ORDERED = frozenset({"string", "number", "datetime"})

Operand = tuple[str, tuple[Any, ...], str]  # SQL, parameters, type


def parse_filter(text: str | None, lang: str | None, crs: str | None,
                 fields: Mapping[str, Queryable]) -> SqlFragment | None:
    """The ``filter`` parameter in ``filter-lang`` and ``filter-crs`` as SQL over ``fields``.

    Returns ``None`` when there is no filter; raises 400 on anything invalid
    or unsupported. Messages cite positions and names, never echo raw input.
    """
    language = (lang or "cql2-text").strip().lower()
    if language not in LANGUAGES:
        raise InvalidInput(f"parameter 'filter-lang' must be one of {', '.join(LANGUAGES)}")
    filter_crs = parse_crs("filter-crs", crs)
    if text is None or not text.strip():
        if lang or crs:
            raise InvalidInput("parameters 'filter-lang' and 'filter-crs' need a 'filter'")
        return None
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidInput(f"parameter 'filter' is longer than {MAX_FILTER_CHARS} characters")
    tree = _parse_text(text) if language == "cql2-text" else _parse_json(text)
    try:
        sql, params = _Compiler(fields, filter_crs).condition(tree)
    except RecursionError:  # a long flat AND/OR chain nests the AST too
        raise InvalidInput("parameter 'filter' is nested too deeply") from None
    return SqlFragment(sql, params)


_TEMPORAL_INFIX = ("?temporal_predicate: expression _binary_temporal_predicate_func expression "
                   "-> binary_temporal_predicate")
# Two gaps of pygeofilter 0.4's CQL2 text grammar, closed by editing it (old text -> new text):
# temporal operators in the standard prefix form ``T_AFTER(a, b)`` (CQL2 §7.11, like the spatial
# ones; pygeofilter only reads ``a T_AFTER b``), and ``NOT (a OR b)`` (it only negates predicates).
_GRAMMAR_PATCHES = (
    (_TEMPORAL_INFIX, _TEMPORAL_INFIX + '\n    | _binary_temporal_predicate_func "(" expression "," expression ")"'
                      " -> binary_temporal_predicate_prefix"),
    ('| "NOT"i "(" predicate ")"', '| "NOT"i "(" condition ")"'),
)


@functools.lru_cache(maxsize=1)
def _text_parser():
    """pygeofilter's CQL2 text parser with :data:`_GRAMMAR_PATCHES` applied.

    If pygeofilter's grammar changes shape, its own parser is used as is
    (the patched forms then answer 400, nothing worse).
    """
    import lark
    from pygeofilter.parsers.cql2_text import parser as module
    from pygeofilter.parsers.cql2_text.parser import CQLTransformer

    logging.getLogger("lark").setLevel(logging.WARNING)  # pygeofilter sets it to DEBUG
    folder = Path(module.__file__).parent
    grammar = (folder / "grammar.lark").read_text()
    if not all(old in grammar for old, _ in _GRAMMAR_PATCHES):
        logger.warning("pygeofilter's CQL2 grammar changed; using it unpatched")
        return module.parser
    for old, new in _GRAMMAR_PATCHES:
        grammar = grammar.replace(old, new)

    @lark.v_args(inline=True)
    class Transformer(CQLTransformer):
        def binary_temporal_predicate_prefix(self, op, lhs, rhs):
            return self.binary_temporal_predicate(lhs, op, rhs)

    return lark.Lark(grammar, parser="lalr", maybe_placeholders=False, transformer=Transformer(),
                     import_paths=[str(folder.parent)])


def _parse_text(text: str) -> ast.Node:
    from lark.exceptions import UnexpectedInput

    try:
        return _text_parser().parse(text)
    except UnexpectedInput as exc:
        raise InvalidInput(f"parameter 'filter' is not valid CQL2 text (error at line {exc.line}, "
                           f"column {exc.column})") from None
    except RecursionError:
        raise InvalidInput("parameter 'filter' is nested too deeply") from None
    except Exception:  # lark wraps transformer errors (bad dates, numbers) in VisitError
        logger.info("CQL2 text refused", exc_info=True)
        raise InvalidInput("parameter 'filter' is not valid CQL2 text (a literal could not be read)") from None


def _parse_json(text: str) -> ast.Node:
    from pygeofilter.parsers.cql2_json import parse

    try:
        document = _bbox_to_polygon(json.loads(text))
    except RecursionError:
        raise InvalidInput("parameter 'filter' is nested too deeply") from None
    except ValueError:
        raise InvalidInput("parameter 'filter' is not valid JSON") from None
    try:
        return parse(document)
    except RecursionError:
        raise InvalidInput("parameter 'filter' is nested too deeply") from None
    except Exception:
        logger.info("CQL2 JSON refused", exc_info=True)
        raise InvalidInput("parameter 'filter' is not valid CQL2 JSON (unknown operator or malformed "
                           "arguments)") from None


def _bbox_to_polygon(node: Any) -> Any:
    """CQL2 JSON ``{"bbox": [minx, miny, maxx, maxy]}`` as a GeoJSON polygon.

    pygeofilter 0.4 builds ``Envelope(x1, x2, y1, y2)`` from the list in
    CQL2 order (minx, miny, ...), which would swap axes; we convert first.
    """
    if isinstance(node, list):
        return [_bbox_to_polygon(n) for n in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"} and isinstance(node["bbox"], list) and len(node["bbox"]) in (4, 6):
        box = node["bbox"] if len(node["bbox"]) == 4 else [node["bbox"][i] for i in (0, 1, 3, 4)]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
            raise InvalidInput("parameter 'filter': a bbox literal needs numbers")
        x1, y1, x2, y2 = box
        return {"type": "Polygon", "coordinates": [[[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]}
    return {k: _bbox_to_polygon(v) for k, v in node.items()}


class _Compiler:
    """Walks one pygeofilter AST into ``(sql, params)``; a fresh one per filter."""

    def __init__(self, fields: Mapping[str, Queryable], crs: str) -> None:
        self.fields = fields
        self.crs = crs
        self.nodes = 0

    def _count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidInput(f"parameter 'filter' has more than {MAX_NODES} terms")

    # -- conditions ------------------------------------------------------------------------------

    def condition(self, node: Any, depth: int = 0) -> tuple[str, tuple[Any, ...]]:
        self._count()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"parameter 'filter' is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, (ast.And, ast.Or)):
            # A flat chain "a OR b OR c ..." is one level however long (the parser nests it).
            parts = [self.condition(term, depth + 1) for term in _chain(node)]
            joiner = " AND " if isinstance(node, ast.And) else " OR "
            return "(" + joiner.join(sql for sql, _ in parts) + ")", tuple(p for _, ps in parts for p in ps)
        if isinstance(node, ast.Not):
            sql, params = self.condition(node.sub_node, depth + 1)
            return f"(NOT {sql})", params
        if isinstance(node, ast.Include):
            return ("FALSE" if node.not_ else "TRUE"), ()
        handler = self._handlers().get(type(node))
        if handler is None:
            raise NotSupported(f"parameter 'filter': {_op_name(node)} is not supported here")
        return handler(node)

    def _handlers(self):
        handlers = {cls: self._comparison for cls in _COMPARISONS}
        handlers.update({cls: self._spatial for cls in _SPATIAL})
        handlers.update({ast.Like: self._like, ast.In: self._in, ast.Between: self._between,
                         ast.IsNull: self._is_null, ast.BBox: self._bbox_predicate,
                         ast.TimeBefore: self._temporal, ast.TimeAfter: self._temporal,
                         ast.TimeDuring: self._temporal, ast.TimeEquals: self._temporal,
                         ast.TimeOverlaps: self._temporal})
        return handlers

    def _comparison(self, node: ast.Comparison) -> tuple[str, tuple[Any, ...]]:
        (left, lp, lt), (right, rp, rt) = self.operand(node.lhs), self.operand(node.rhs)
        _same_type(lt, rt, "a comparison")
        op = _COMPARISONS[type(node)]
        if lt not in _ORDERED and op not in {"=", "<>"}:
            raise InvalidInput(f"parameter 'filter': {lt} values can only be compared with = and <>")
        return f"({left} {op} {right})", lp + rp

    def _like(self, node: ast.Like) -> tuple[str, tuple[Any, ...]]:
        (left, lp, lt), (pattern, pp, pt) = self.operand(node.lhs), self.operand(node.pattern)
        if lt != "string" or pt != "string":
            raise InvalidInput("parameter 'filter': LIKE needs a string property and a string pattern")
        op = ("NOT " if node.not_ else "") + ("ILIKE" if node.nocase else "LIKE")
        return f"({left} {op} {pattern})", lp + pp

    def _in(self, node: ast.In) -> tuple[str, tuple[Any, ...]]:
        left, params, kind = self.operand(node.lhs)
        if not node.sub_nodes or len(node.sub_nodes) > MAX_IN_VALUES:
            raise InvalidInput(f"parameter 'filter': IN needs 1 to {MAX_IN_VALUES} values")
        items = []
        for sub in node.sub_nodes:
            sql, sub_params, sub_kind = self.operand(sub)
            _same_type(kind, sub_kind, "IN")
            items.append(sql)
            params += sub_params
        return f"({left} {'NOT IN' if node.not_ else 'IN'} ({', '.join(items)}))", params

    def _between(self, node: ast.Between) -> tuple[str, tuple[Any, ...]]:
        (left, lp, lt), (low, wp, wt), (high, hp, ht) = (self.operand(node.lhs), self.operand(node.low),
                                                          self.operand(node.high))
        _same_type(lt, wt, "BETWEEN")
        _same_type(lt, ht, "BETWEEN")
        if lt not in _ORDERED:
            raise InvalidInput("parameter 'filter': BETWEEN needs numbers, strings or date-times")
        return f"({left} {'NOT BETWEEN' if node.not_ else 'BETWEEN'} {low} AND {high})", lp + wp + hp

    def _is_null(self, node: ast.IsNull) -> tuple[str, tuple[Any, ...]]:
        sql, params, _ = self.operand(node.lhs)
        return f"({sql} IS {'NOT ' if node.not_ else ''}NULL)", params

    def _spatial(self, node: ast.SpatialComparisonPredicate) -> tuple[str, tuple[Any, ...]]:
        (left, lp, lt), (right, rp, rt) = self.operand(node.lhs), self.operand(node.rhs)
        if lt != "geometry" or rt != "geometry":
            raise InvalidInput(f"parameter 'filter': {_op_name(node)} needs two geometries")
        return f"{_SPATIAL[type(node)]}({left}, {right})", lp + rp

    def _bbox_predicate(self, node: ast.BBox) -> tuple[str, tuple[Any, ...]]:
        left, params, kind = self.operand(node.lhs)
        if kind != "geometry":
            raise InvalidInput("parameter 'filter': BBOX needs a geometry property")
        crs = parse_crs("filter", node.crs) if node.crs else self.crs
        box = [_number(v) for v in (node.minx, node.miny, node.maxx, node.maxy)]
        polygon = shapely.geometry.box(*box)
        return f"ST_Intersects({left}, ST_GeomFromText(%s, 4326))", params + (_to_crs84_wkt(polygon, crs),)

    def _temporal(self, node: ast.TemporalPredicate) -> tuple[str, tuple[Any, ...]]:
        left, params, kind = self.operand(node.lhs)
        if kind != "datetime" or not isinstance(node.lhs, ast.Attribute):
            raise InvalidInput(f"parameter 'filter': {_op_name(node)} needs a date-time property first")
        start, end = _time_bounds(node.rhs)
        # Instants are degenerate intervals (CQL2 §6.4); pygeofilter reads T_INTERSECTS as TimeOverlaps.
        if isinstance(node, ast.TimeAfter):
            return (f"({left} > %s::timestamptz)", params + (end,)) if end else ("FALSE", ())
        if isinstance(node, ast.TimeBefore):
            return (f"({left} < %s::timestamptz)", params + (start,)) if start else ("FALSE", ())
        if isinstance(node, ast.TimeEquals):
            if start is None or start != end:
                return "FALSE", ()
            return f"({left} = %s::timestamptz)", params + (start,)
        low_op, high_op = (">=", "<=") if isinstance(node, ast.TimeOverlaps) else (">", "<")
        parts, bound = [], ()
        if start is not None:
            parts.append(f"{left} {low_op} %s::timestamptz")
            bound += params + (start,)
        if end is not None:
            parts.append(f"{left} {high_op} %s::timestamptz")
            bound += params + (end,)
        if not parts:
            return f"({left} IS NOT NULL)", params
        return "(" + " AND ".join(parts) + ")", bound

    # -- operands --------------------------------------------------------------------------------

    def operand(self, node: Any) -> Operand:
        self._count()
        if isinstance(node, ast.Attribute):
            return self._attribute(node.name)
        if isinstance(node, ast.Function):
            return self._function(node)
        if isinstance(node, bool):
            return "%s::boolean", (node,), "boolean"
        if isinstance(node, (int, float)):
            return "%s::double precision", (_number(node),), "number"
        if isinstance(node, str):
            return "%s::text", (node,), "string"
        if isinstance(node, (datetime, date)):
            return "%s::timestamptz", (_utc(node),), "datetime"
        if isinstance(node, (values.Geometry, values.Envelope)):
            return "ST_GeomFromText(%s, 4326)", (self._geometry(node),), "geometry"
        raise NotSupported(f"parameter 'filter': {_op_name(node)} is not supported here")

    def _attribute(self, name: str) -> Operand:
        queryable = self.fields.get(name)
        if queryable is None:
            raise InvalidInput(f"parameter 'filter': {safe_name(name)} is not a queryable of this collection; "
                               f"see its /queryables")
        if queryable.is_geometry:
            return queryable.sql, (), "geometry"
        if queryable.is_datetime:
            return queryable.sql, (), "datetime"
        return queryable.sql, (), "number" if queryable.type in {"number", "integer"} else queryable.type

    def _function(self, node: ast.Function) -> Operand:
        if node.name.lower() not in {"lower", "casei"} or len(node.arguments) != 1:
            raise NotSupported("parameter 'filter': only the CASEI function is supported")
        sql, params, kind = self.operand(node.arguments[0])
        if kind != "string":
            raise InvalidInput("parameter 'filter': CASEI needs a string")
        return f"lower({sql})", params, "string"

    def _geometry(self, node: values.Geometry | values.Envelope) -> str:
        document = dict(node.geometry)
        crs = self.crs
        if isinstance(document.get("crs"), dict):  # EWKT "SRID=3857;POINT(...)"
            name = document.pop("crs").get("properties", {}).get("name", "")
            crs = parse_crs("filter", name)
        try:
            geometry = shapely.geometry.shape(document)
        except Exception:
            raise InvalidInput("parameter 'filter': a geometry literal is not valid") from None
        if shapely.get_num_coordinates(geometry) > MAX_VERTICES:
            raise InvalidInput(f"parameter 'filter': geometry literals may have at most {MAX_VERTICES} vertices")
        return _to_crs84_wkt(geometry, crs)


def _chain(node: ast.Combination) -> list[Any]:
    """The operands of a chain of one combination type, in order, without recursion."""
    terms, stack = [], [node]
    while stack:
        current = stack.pop()
        if type(current) is type(node):
            stack += [current.rhs, current.lhs]
        else:
            terms.append(current)
    return terms


def _to_crs84_wkt(geometry: shapely.Geometry, crs: str) -> str:
    """The literal in CRS84 (lon/lat) as WKT, made valid so GEOS never fails on it."""
    if geometry.is_empty or not all(map(_finite, shapely.get_coordinates(geometry).ravel())):
        raise InvalidInput("parameter 'filter': a geometry literal is empty or not finite")
    if crs != CRS84:
        transformer = to_crs84(crs)

        def reproject(coords: np.ndarray) -> np.ndarray:
            return np.column_stack(transformer.transform(coords[:, 0], coords[:, 1], errcheck=True))

        try:
            geometry = shapely.transform(geometry, reproject)
        except Exception:
            raise InvalidInput("parameter 'filter': a geometry lies outside the area of filter-crs") from None
    lon, lat = shapely.get_coordinates(geometry).T
    if lon.size and (abs(lon).max() > 180 or abs(lat).max() > 90):
        hint = " (EPSG:4326 is lat,lon)" if crs == EPSG_URI.format(code=4326) else ""
        raise InvalidInput(f"parameter 'filter': geometry coordinates out of lon/lat range{hint}")
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    return shapely.to_wkt(geometry, rounding_precision=-1)


def _time_bounds(node: Any) -> tuple[datetime | None, datetime | None]:
    if isinstance(node, values.Interval):
        start, end = node.start, node.end
        if isinstance(start, timedelta) or isinstance(end, timedelta):
            raise NotSupported("parameter 'filter': intervals with durations are not supported")
        low = _utc(start) if start is not None else None
        high = _utc(end, end_of_day=True) if end is not None else None
        return low, high
    if isinstance(node, (datetime, date)):
        return _utc(node), _utc(node, end_of_day=True)
    raise InvalidInput("parameter 'filter': a temporal operator needs a TIMESTAMP, DATE or INTERVAL literal")


def _utc(value: date | datetime, *, end_of_day: bool = False) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    start = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return start + timedelta(days=1, microseconds=-1) if end_of_day else start


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise InvalidInput("parameter 'filter': numbers must be finite")
    return value


def _same_type(left: str, right: str, where: str) -> None:
    if left != right:
        raise InvalidInput(f"parameter 'filter': {where} mixes a {left} and a {right}")


def _op_name(node: Any) -> str:
    """A readable name of an AST node or literal type for messages (never the literal itself)."""
    names = {ast.TimeMeets: "T_MEETS", ast.TimeMetBy: "T_METBY", ast.TimeOverlappedBy: "T_OVERLAPPEDBY",
             ast.TimeBegins: "T_BEGINS", ast.TimeBegunBy: "T_BEGUNBY", ast.TimeContains: "T_CONTAINS",
             ast.TimeEnds: "T_ENDS", ast.TimeEndedBy: "T_ENDEDBY", ast.Relate: "S_RELATE",
             ast.Exists: "EXISTS", ast.Add: "arithmetic", ast.Sub: "arithmetic", ast.Mul: "arithmetic",
             ast.Div: "arithmetic", ast.ArrayEquals: "A_EQUALS", ast.ArrayContains: "A_CONTAINS",
             ast.ArrayContainedBy: "A_CONTAINEDBY", ast.ArrayOverlaps: "A_OVERLAPS",
             ast.DistanceWithin: "DWITHIN", ast.DistanceBeyond: "BEYOND"}
    if type(node) in names:
        return names[type(node)]
    if isinstance(node, ast.Function):
        return "function " + (node.name if node.name.isidentifier() and len(node.name) < 40 else "(unnamed)")
    if isinstance(node, ast.SpatialComparisonPredicate):
        return "S_" + node.op.name
    return type(node).__name__
