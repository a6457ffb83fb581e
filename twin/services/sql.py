# SPDX-License-Identifier: AGPL-3.0-or-later
"""Hot-path SQL with server-side parameter binding, on Django's own connection.

Django's PostgreSQL backend binds parameters on the client: every array and
JSON document is escaped into the SQL text (psycopg's ``_dump_list`` runs a
regex over each element) and the server parses it back. For the few
statements that run once per ingestion batch with large array or JSON
parameters, that escaping was ~13 % of a worker's CPU (cProfile of
``bench/ingest_cpu.py``). A plain ``psycopg.Cursor`` on the same connection
sends them as bound parameters instead — same connection, same transaction,
and Django's exception types, so callers handle errors as before.
"""
from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from enum import Enum
from typing import Any

import psycopg
from django.contrib.gis.db.models import GeometryField
from django.db import connection
from django.db.models import Field, JSONField, Model
from django.utils import timezone
from psycopg.types.json import Jsonb

from twin.json_text import compact_json


class _LoggedCursor(psycopg.Cursor):
    """A bound cursor whose statements go to Django's query log, used only while that log is on.

    Why: with ``DEBUG`` or ``CaptureQueriesContext`` on, Django logs what its
    own cursors run; the hot paths' statements must be seen there too (tests
    assert which statements a batch sends, and in what order).
    """

    def execute(self, query, params=None, **kwargs):
        with _logged(query):
            return super().execute(query, params, **kwargs)


@contextmanager
def _logged(query) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        connection.queries_log.append({"sql": f"{query}", "time": f"{time.monotonic() - start:.3f}"})


@contextmanager
def bound_cursor() -> Iterator[psycopg.Cursor]:
    """A server-side-binding cursor on Django's connection (inside the caller's transaction, if any)."""
    connection.ensure_connection()
    kind = _LoggedCursor if connection.queries_logged else psycopg.Cursor
    with connection.wrap_database_errors, kind(connection.connection) as cursor:
        yield cursor


@dataclass(frozen=True, slots=True)
class _Column:
    """How one model field travels in :func:`insert_models`: as an array of ``array_type``, selected by ``select``."""

    field: Field
    array_type: str
    select: str
    convert: Callable[[Any], Any]


def _plain(value: Any) -> Any:
    return value


def _text(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value     # TextChoices members: their value, never their name


def _column(field: Field) -> _Column:
    name = connection.ops.quote_name(field.column)
    if isinstance(field, GeometryField):
        srid = field.srid

        def geometry(value, srid=srid):
            if value is None:
                return None
            if value.srid is None:
                value = value.clone()
                value.srid = srid
            elif value.srid != srid:
                value = value.transform(srid, clone=True)
            return bytes(value.ewkb)
        return _Column(field, "bytea", f"ST_GeomFromEWKB(u.{name})", geometry)
    if isinstance(field, JSONField):
        # No encoder of its own: json.dumps's output through orjson (see twin.json_text), ~5× faster.
        dumps = functools.partial(json.dumps, cls=field.encoder) if field.encoder else compact_json
        return _Column(field, "jsonb", f"u.{name}", lambda value: None if value is None else Jsonb(value, dumps))
    db_type = field.db_type(connection) or ""
    if field.get_internal_type() == "BinaryField":
        return _Column(field, "bytea", f"u.{name}", lambda value: None if value is None else bytes(value))
    if field.get_internal_type() in ("CharField", "TextField", "SlugField", "EmailField", "URLField"):
        return _Column(field, "text", f"u.{name}", _text)
    if field.get_internal_type() in _AS_IS:
        return _Column(field, db_type, f"u.{name}", _plain)
    # Anything else (date-times: naive ones made aware, as Django does) through the field's own preparation.
    return _Column(field, db_type, f"u.{name}", functools.partial(field.get_db_prep_save, connection=connection))


_AS_IS = frozenset({"AutoField", "BigAutoField", "ForeignKey", "OneToOneField", "BigIntegerField", "IntegerField",
                    "SmallIntegerField", "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField",
                    "BooleanField", "UUIDField", "FloatField"})


@functools.cache
def _insert_plan(model: type[Model], with_ids: bool = False) -> tuple[str, tuple[_Column, ...]]:
    meta = model._meta
    columns = tuple(_column(f) for f in meta.concrete_fields if with_ids or f is not meta.pk)
    names = ", ".join(connection.ops.quote_name(c.field.column) for c in columns)
    sql = (f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({names}) "
           f"SELECT {', '.join(c.select for c in columns)} "
           f"FROM unnest({', '.join(f'%b::{c.array_type}[]' for c in columns)}) AS u({names})")
    return sql, columns


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement and its parameters, not yet sent (see :func:`execute_as_one`)."""

    sql: str
    params: Sequence[Any]


def insert_statement(objs: Sequence[Model], *, with_ids: bool = False) -> Statement | None:
    """The ``INSERT … SELECT FROM unnest`` of new rows of one model (see :func:`insert_models`); None for no rows.

    ``with_ids``: every object already has its primary key (from
    :func:`allocate_ids`) and it is inserted as given. Defaults and
    ``auto_now(_add)`` are applied to the objects now, as ``bulk_create``
    does; the objects are marked as saved.
    """
    if not objs:
        return None
    model = type(objs[0])
    pk = model._meta.pk.attname
    if with_ids and any(getattr(obj, pk) is None for obj in objs):
        raise ValueError(f"insert_statement(with_ids=True): a {model.__name__} without its primary key")
    sql, columns = _insert_plan(model, with_ids)
    arrays = [[c.convert(c.field.pre_save(obj, True)) for obj in objs] for c in columns]
    for obj in objs:
        obj._state.adding, obj._state.db = False, "default"
    return Statement(sql, arrays)


def columns_statement(model: type[Model], values: dict[str, Sequence[Any]]) -> Statement | None:
    """The insert of new rows of ``model`` given column-wise: field (attribute) name → one value per row.

    A field not given takes its default (``auto_now``/``auto_now_add``: now) in
    every row; the primary key, when given, is inserted as given. Why:
    building a Django model instance per row cost the report writer a quarter
    of its CPU (two steps, a transition, a reporter, a notification and the
    media rows of each report) for rows nobody reads back. Values travel as
    :func:`insert_statement`'s do.
    """
    lengths = {len(v) for v in values.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns_statement({model.__name__}): columns of different lengths {sorted(lengths)}")
    n = lengths.pop()
    if n == 0:
        return None
    sql, columns = _insert_plan(model, model._meta.pk.attname in values)   # keys given (allocate_ids) or not
    known = {f.attname for f in model._meta.concrete_fields}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"columns_statement({model.__name__}): no field {', '.join(sorted(unknown))}")
    arrays = []
    for c in columns:
        given = values.get(c.field.attname)
        if given is None:
            stamp = getattr(c.field, "auto_now", False) or getattr(c.field, "auto_now_add", False)
            default = timezone.now() if stamp else c.field.get_default()
            given = [default] * n
        arrays.append([c.convert(value) for value in given])
    return Statement(sql, arrays)


def execute_as_one(statements: Sequence[Statement | None]) -> None:
    """Run data-modifying statements as one: ``WITH s0 AS (…), s1 AS (…) SELECT`` (None entries are skipped).

    Why: a citizen-report batch writes nine tables. Sent one by one, each
    statement (and the transaction's BEGIN and COMMIT) was a wait for the
    server and then, under load, 10–20 ms for a core and the GIL. As one
    statement it is one wait and, outside a transaction, its own transaction:
    all of it is stored or none. Every part sees the same snapshot, so no part
    may read what another writes; foreign keys are checked at the end, so the
    parts may come in any order. Inside a caller's transaction it is part of it.
    """
    parts = [s for s in statements if s is not None]
    if not parts:
        return
    sql = "WITH " + ", ".join(f"s{i} AS ({s.sql})" for i, s in enumerate(parts)) + " SELECT 1"
    with bound_cursor() as cursor:
        cursor.execute(sql, [p for s in parts for p in s.params])


def insert_models(objs: Sequence[Model]) -> list[Model]:
    """``bulk_create`` of new rows of one model on a hot path: one ``INSERT … SELECT FROM unnest``, bound on the server.

    Why: the citizen-report writer spent 38 % of its time in Django's
    ``bulk_create``. Django 5.2 inserts through ``UNNEST`` itself, but not
    for a model with a geometry (its placeholder depends on the value: one
    placeholder per value assembled into the SQL text), and with Django's
    client-side binding every value, arrays included, is quoted into the SQL
    text for the server to parse back. Here each column travels as one
    binary array. Defaults and ``auto_now(_add)`` are applied by each
    field's ``pre_save`` as ``bulk_create`` does; primary keys come back in
    the objects' order (PostgreSQL inserts and returns the rows of
    ``unnest`` in array order, as Django's own ``UNNEST`` insert relies on;
    tests/twin/test_insert_models.py checks it). Not for models with
    multi-table inheritance; no signals are sent (nor does ``bulk_create``).
    """
    statement = insert_statement(objs)
    if statement is None:
        return list(objs)
    model = type(objs[0])
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    with bound_cursor() as cursor:
        cursor.execute(f"{statement.sql} RETURNING {pk_column}", statement.params)
        ids = cursor.fetchall()
    pk = model._meta.pk.attname
    for obj, (new_id,) in zip(objs, ids, strict=True):
        setattr(obj, pk, new_id)
    return list(objs)


def allocate_statement(counts: dict[type[Model], int]) -> Statement:
    """The query behind :func:`allocate_ids`, to send with other reads (:func:`fetch_together`).

    Its rows give the keys through :func:`ids_from`.
    """
    parts, params = [], []
    for model, n in counts.items():
        meta = model._meta
        parts.append("ARRAY(SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s))")
        params += [meta.db_table, meta.pk.column, n]
    return Statement(f"SELECT {', '.join(parts) or 'NULL'}", params)


def ids_from(rows: list[tuple], counts: dict[type[Model], int]) -> dict[type[Model], list[int]]:
    """The keys of each model read from the rows of :func:`allocate_statement`."""
    return {model: list(ids) for model, ids in zip(counts, rows[0], strict=False)}


def allocate_ids(counts: dict[type[Model], int]) -> dict[type[Model], list[int]]:
    """Fresh primary keys from each model's own sequence, for all the models in one statement.

    Why: with their keys known before anything is written, the rows of a
    report batch (reports, features, events, media) no longer wait for each
    other's ``RETURNING``, so all of them can be sent as one statement
    (:func:`execute_as_one`). Keys taken and not used are gaps, as after any
    rolled-back insert. Sequence values are not transactional: ask for them
    before or inside a transaction alike.
    """
    return ids_from(fetch_together([allocate_statement(counts)])[0], counts)


def fetch_together(statements: Sequence[Statement]) -> list[list[tuple]]:
    """Send the statements as one query text and return each one's rows: one wait for the server, not one each.

    Why: the report writer's reads before its write (the rate-limit count,
    the ward candidates of the batch's places, the new keys) are independent;
    sent one by one each was a wait for the server and then, under load,
    10–20 ms for a core and the GIL. A psycopg pipeline still waited once per
    statement (each ``execute`` polls the socket, releasing the GIL); here
    each statement is bound on the client (``mogrify``: these are small) and
    the text goes in one simple-protocol message, its results read with
    ``nextset``. Outside a transaction the statements form one implicit
    transaction: a failing one keeps nothing of the others (raised as
    Django's exception type). Every statement must return rows.
    """
    if not statements:
        return []
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.ClientCursor(connection.connection) as cursor:
        text = ";\n".join(cursor.mogrify(s.sql, s.params) for s in statements)
        with _logged(text) if connection.queries_logged else nullcontext():
            cursor.execute(text)      # no parameters: the simple protocol, which allows several statements
        out = [cursor.fetchall()]
        while cursor.nextset():
            out.append(cursor.fetchall())
    return out


__all__ = ["Statement", "allocate_ids", "allocate_statement", "bound_cursor", "columns_statement", "execute_as_one",
           "fetch_together", "ids_from", "insert_models", "insert_statement"]
