# SPDX-License-Identifier: AGPL-3.0-or-later
"""PostGIS providers: SQL that builds the GeoJSON in the database.

:class:`TableProvider` turns a :class:`~layers.query.FeatureQuery` into one
parameterised statement whose single row holds the page already serialised
(``ST_AsGeoJSON`` and ``string_agg``), so Python only wraps it — the way to
stay near the raw SQL floor. Filters are index-friendly: ``geom && box AND
ST_Intersects(geom, box)`` with the *query* geometry in the storage SRID
(pg_featureserv ``db_sql.go::sqlBBoxFilter``). There is no full ``COUNT(*)``:
``numberMatched`` is exact when the page shows it (first page, fewer rows
than the limit), else counted up to :data:`COUNT_CAP` rows and left out
beyond. Every statement runs under ``statement_timeout`` so a hostile
filter cannot hold a worker.

:class:`FeatureProvider` serves one layer's rows of ``twin_feature``.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from django.conf import settings
from django.db import DataError, OperationalError, connection, transaction
from pydantic import BaseModel, ConfigDict, Field

from layers.crs import STORAGE, OutputCrs
from layers.errors import InvalidInput, NotFound, QueryTooExpensive
from layers.providers.base import Extent, FeaturePage, LayerProvider
from layers.query import FeatureQuery, Queryable, SqlFragment
from twin.models import last_seen_sql

logger = logging.getLogger(__name__)

#: core feature columns every feature shows, before its kind's properties
CORE_OUTPUT = ("name", "status", "height_m", "last_seen")
#: numberMatched is counted up to this many rows, and omitted above
COUNT_CAP = 100_000
_CASTS = {"string": "text", "number": "double precision", "integer": "double precision",
          "boolean": "boolean"}


def statement_timeout_ms() -> int:
    return int(getattr(settings, "LAYERS_API_STATEMENT_TIMEOUT_MS", 10_000))


def run_sql(sql: str, params: Sequence[Any]) -> list[tuple]:
    """Run one read statement under the API's statement timeout, with JIT off.

    JIT compiles for ~50-100 ms on large aggregates and rarely pays back on
    page-sized queries (stack notes: 2x slower tiles). User-caused database
    errors become 400s; nothing of the SQL reaches the message.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true), set_config('jit', 'off', true), "
                           "set_config('max_parallel_workers_per_gather', '0', true)",
                           [str(statement_timeout_ms())])
            cursor.execute(sql, params)
            return cursor.fetchall()
    except OperationalError as exc:
        if type(exc.__cause__).__name__ == "QueryCanceled":
            logger.warning("layers query cancelled after %s ms", statement_timeout_ms())
            raise QueryTooExpensive("the query took too long; narrow it with bbox, datetime or a simpler "
                                    "filter") from None
        raise
    except DataError:
        logger.info("layers query refused by the database", exc_info=True)
        raise InvalidInput("a filter value cannot be compared with the stored data") from None


class TableProvider(LayerProvider):
    """A provider over one SQL relation; subclasses fill in the relation and expressions.

    ``inner_columns`` are selected from ``from_sql`` (aliased so that the
    ``output_sql`` of queryables and :meth:`all_properties_sql` work on the
    page subquery, itself aliased ``f``).
    """

    from_sql: ClassVar[str]
    inner_columns: ClassVar[str]
    id_sql: ClassVar[str]           # the API id, on the page subquery
    key_sql: ClassVar[tuple[str, ...]]  # unique tie-breaker for a stable order, on the relation
    row_key: ClassVar[tuple[str, ...]]  # primary key of a row of the relation (joins the page back)
    geom_sql: ClassVar[str]         # geometry on the relation (filters)
    page_geom_sql: ClassVar[str] = "f.geom"

    def __init__(self, base_where: SqlFragment, fields: Mapping[str, Queryable], temporal: str | None) -> None:
        self.base_where = base_where
        self._fields = dict(fields)
        self.temporal = temporal if temporal in self._fields else None

    def fields(self) -> Mapping[str, Queryable]:
        return self._fields

    @property
    def supports_datetime(self) -> bool:  # type: ignore[override]
        return self.temporal is not None

    # -- subclasses ----------------------------------------------------------------------------

    def all_properties_sql(self) -> str:
        """JSONB of every output property, on the page subquery."""
        return self._select_properties([n for n, q in self._fields.items() if not q.is_geometry])

    def fid_where(self, fid: str) -> SqlFragment | None:
        """The condition selecting feature ``fid`` on the relation; ``None`` if ``fid`` cannot exist."""
        raise NotImplementedError

    # -- SQL -------------------------------------------------------------------------------------

    def where(self, q: FeatureQuery) -> SqlFragment:
        parts, params = [self.base_where.sql], list(self.base_where.params)
        if q.bbox is not None:
            # ST_Intersects carries its own index test (``geom && box``, PostGIS >= 3 support
            # function); an explicit extra ``&&`` would make the planner count its selectivity
            # twice and pick a full sort for a box that covers the whole layer.
            box = "ST_GeomFromText(%s, 4326)" if q.bbox.footprint_wkt else "ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
            parts.append(f"ST_Intersects({self.geom_sql}, {box})")
            params += [q.bbox.footprint_wkt] if q.bbox.footprint_wkt else [q.bbox.minx, q.bbox.miny, q.bbox.maxx,
                                                                           q.bbox.maxy]
        if q.datetime_interval is not None and self.temporal is not None:
            column = self._fields[self.temporal].sql
            if q.datetime_interval.start is not None:
                parts.append(f"{column} >= %s::timestamptz")
                params.append(q.datetime_interval.start)
            if q.datetime_interval.end is not None:
                parts.append(f"{column} <= %s::timestamptz")
                params.append(q.datetime_interval.end)
        for name, value in q.property_filters:
            queryable = self._fields[name]
            cast = "timestamptz" if queryable.is_datetime else _CASTS[queryable.type]
            parts.append(f"{queryable.sql} = %s::{cast}")
            params.append(value)
        if q.cql_filter is not None:
            parts.append(q.cql_filter.sql)
            params += q.cql_filter.params
        return SqlFragment(" AND ".join(f"({p})" for p in parts), tuple(params))

    def order_terms(self, q: FeatureQuery) -> list[tuple[str, str]]:
        """(expression on the relation, direction) pairs: the requested keys, then the unique tie-breaker."""
        keys = [(self._fields[k.name].sql, "DESC NULLS LAST" if k.descending else "ASC NULLS LAST")
                for k in q.sortby]
        return [*keys, *((k, "ASC") for k in self.key_sql)]

    def properties_sql(self, selected: tuple[str, ...] | None) -> str:
        return self.all_properties_sql() if selected is None else self._select_properties(selected)

    def _select_properties(self, names: Sequence[str]) -> str:
        if not names:
            return "'{}'::jsonb"
        pairs = ", ".join(f"{_sql_string(n)}, {self._fields[n].output_sql}" for n in names)
        return f"jsonb_build_object({pairs})"

    def feature_json_sql(self, properties: str, crs: OutputCrs = STORAGE) -> str:
        geometry = crs.geometry_sql(self.page_geom_sql)
        return ("'{\"type\":\"Feature\",\"id\":' || to_json(" + self.id_sql + ")::text"
                f" || ',\"geometry\":' || coalesce(ST_AsGeoJSON({geometry}, {crs.digits}), 'null')"
                f" || ',\"properties\":' || ({properties})::text || '}}'")

    # -- the API -------------------------------------------------------------------------------

    def page_sql(self, q: FeatureQuery, where: SqlFragment) -> str:
        """One statement answering ``(rows fetched, features JSON)`` for a page.

        Innermost, only the row keys and sort values are selected, sorted and
        cut with ``ORDER BY ... LIMIT/OFFSET`` (a narrow, bounded top-N sort;
        deep offsets skip narrow rows). Those <= limit+1 keys are joined back to
        the relation for the full rows, numbered in sort order, and serialised.
        """
        terms = self.order_terms(q)
        keys = ", ".join(f"{expr} AS r{i}__" for i, expr in enumerate(self.row_key))
        sorts = ", ".join(f"{expr} AS s{i}__" for i, (expr, _) in enumerate(terms))
        inner_order = ", ".join(f"{expr} {direction}" for expr, direction in terms)
        outer_order = ", ".join(f"k.s{i}__ {direction}" for i, (_, direction) in enumerate(terms))
        join = " AND ".join(f"{expr} = k.r{i}__" for i, expr in enumerate(self.row_key))
        feature = self.feature_json_sql(self.properties_sql(q.properties), q.crs)
        return (f"SELECT count(*), coalesce(string_agg({feature}, ',' ORDER BY f.rn__) "
                f"FILTER (WHERE f.rn__ <= %s), '') FROM ("
                f"SELECT {self.inner_columns}, row_number() OVER (ORDER BY {outer_order}) AS rn__ "
                f"FROM {self.from_sql} JOIN (SELECT {keys}, {sorts} FROM {self.from_sql} WHERE {where.sql} "
                f"ORDER BY {inner_order} LIMIT %s OFFSET %s) k ON {join}) f")

    def query(self, q: FeatureQuery) -> FeaturePage:
        where = self.where(q)
        fetched, body = run_sql(self.page_sql(q, where), [q.limit, *where.params, q.limit + 1, q.offset])[0]
        returned, has_more = min(fetched, q.limit), fetched > q.limit
        matched = self._number_matched(q, where, returned, has_more)
        return FeaturePage(body, returned, matched, has_more)

    def _number_matched(self, q: FeatureQuery, where: SqlFragment, returned: int, has_more: bool) -> int | None:
        if not has_more and (returned or not q.offset):
            return q.offset + returned  # the page reaches the end: known without counting
        if q.offset and returned:
            return None  # middle pages: a client paging through must not pay a count per page
        sql = f"SELECT count(*) FROM (SELECT 1 FROM {self.from_sql} WHERE {where.sql} LIMIT %s) c"
        counted = run_sql(sql, [*where.params, COUNT_CAP + 1])[0][0]
        return counted if counted <= COUNT_CAP else None

    def get(self, fid: str, crs: OutputCrs = STORAGE) -> str:
        condition = self.fid_where(fid)
        if condition is None:
            raise NotFound("no such feature in this collection")
        sql = (f"SELECT {self.feature_json_sql(self.all_properties_sql(), crs)} FROM ("
               f"SELECT {self.inner_columns} FROM {self.from_sql} "
               f"WHERE ({self.base_where.sql}) AND ({condition.sql}) LIMIT 1) f")
        rows = run_sql(sql, [*self.base_where.params, *condition.params])
        if not rows:
            raise NotFound("no such feature in this collection")
        return rows[0][0]

    def extent(self) -> Extent:
        time_sql = self._fields[self.temporal].sql if self.temporal else "NULL::timestamptz"
        sql = (f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), lo, hi, n FROM ("
               f"SELECT ST_Extent({self.geom_sql}) AS e, min({time_sql}) AS lo, max({time_sql}) AS hi, count(*) AS n "
               f"FROM {self.from_sql} WHERE {self.base_where.sql}) s")
        x1, y1, x2, y2, lo, hi, n = run_sql(sql, list(self.base_where.params))[0]
        bbox = (x1, y1, x2, y2) if x1 is not None else None
        return Extent(bbox, (lo, hi) if lo is not None or hi is not None else None, n)


def _sql_string(name: str) -> str:
    """A queryable name as an SQL string literal; names are registry identifiers, checked again here."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_:.\-]{0,63}", name):
        raise InvalidInput("invalid property name")
    return f"'{name}'"


class FeatureProviderConfig(BaseModel):
    """One layer's features in ``twin_feature``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["features"] = Field(default="features", description="Provider type")
    layer_id: int = Field(description="Primary key of the layer")
    kind: str = Field(description="Feature kind of the layer (twin.kinds), for its queryables")


class FeatureProvider(TableProvider):
    """A layer's features; the API id is ``external_id``."""

    type = "features"
    config_model = FeatureProviderConfig
    supports_tiles = True
    from_sql = "twin_feature f"
    inner_columns = "f.*"
    id_sql = "f.external_id"
    key_sql = ("f.external_id",)  # unique per layer; the (layer_id, external_id) index gives the order
    row_key = ("f.id",)
    geom_sql = "f.geom"

    def __init__(self, config: FeatureProviderConfig) -> None:
        from layers.registry import kind_spec

        spec = kind_spec(config.kind)
        fields = {q.name: q for q in spec.resolved_queryables()}
        super().__init__(SqlFragment("f.layer_id = %s", (config.layer_id,)), fields, spec.temporal)
        self.config = config

    def all_properties_sql(self) -> str:
        # The core columns, then the kind's JSONB as stored (OSM tags included), spliced as text:
        # ~2 ms less per 1,000 features than merging JSONB values. Stored keys that shadow a core
        # column are dropped first (only when present, so the common case copies nothing).
        core = "{" + ",".join(CORE_OUTPUT) + "}"
        stored = (f"(CASE WHEN f.properties ?| '{core}'::text[] THEN f.properties - '{core}'::text[] "
                  "ELSE f.properties END)::text")
        return ("'{\"name\":' || to_json(f.name)::text || ',\"status\":' || to_json(f.status)::text"
                " || ',\"height_m\":' || coalesce(to_json(f.height_m)::text, 'null')"
                f" || ',\"last_seen\":' || coalesce(to_json({last_seen_sql('f')})::text, 'null')"
                f" || CASE WHEN f.properties = '{{}}'::jsonb THEN '}}' ELSE ',' || substr({stored}, 2) END")

    def fid_where(self, fid: str) -> SqlFragment | None:
        return SqlFragment("f.external_id = %s", (fid,)) if 0 < len(fid) <= 200 else None
