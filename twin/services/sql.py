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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any

import psycopg
from django.contrib.gis.db.models import GeometryField
from django.db import connection
from django.db.models import Field, JSONField, Model
from psycopg.types.json import Jsonb

from twin.json_text import compact_json


@contextmanager
def bound_cursor() -> Iterator[psycopg.Cursor]:
    """A server-side-binding cursor on Django's connection (inside the caller's transaction, if any)."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
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
    if field.get_internal_type() in ("CharField", "TextField", "SlugField", "EmailField", "URLField"):
        return _Column(field, "text", f"u.{name}", _text)
    if field.get_internal_type() in _AS_IS:
        return _Column(field, db_type, f"u.{name}", _plain)
    # Anything else (date-times: naive ones made aware, as Django does) through the field's own preparation.
    return _Column(field, db_type, f"u.{name}", functools.partial(field.get_db_prep_save, connection=connection))


_AS_IS = frozenset({"ForeignKey", "OneToOneField", "BigIntegerField", "IntegerField", "SmallIntegerField",
                    "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField", "BooleanField",
                    "UUIDField", "FloatField"})


@functools.cache
def _insert_plan(model: type[Model]) -> tuple[str, tuple[_Column, ...]]:
    meta = model._meta
    columns = tuple(_column(f) for f in meta.concrete_fields if f is not meta.pk)
    names = ", ".join(connection.ops.quote_name(c.field.column) for c in columns)
    sql = (f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({names}) "
           f"SELECT {', '.join(c.select for c in columns)} "
           f"FROM unnest({', '.join(f'%b::{c.array_type}[]' for c in columns)}) AS u({names}) "
           f"RETURNING {connection.ops.quote_name(meta.pk.column)}")
    return sql, columns


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
    if not objs:
        return list(objs)
    model = type(objs[0])
    sql, columns = _insert_plan(model)
    arrays = [[c.convert(c.field.pre_save(obj, True)) for obj in objs] for c in columns]
    with bound_cursor() as cursor:
        cursor.execute(sql, arrays)
        ids = cursor.fetchall()
    pk = model._meta.pk.attname
    for obj, (new_id,) in zip(objs, ids, strict=True):
        setattr(obj, pk, new_id)
        obj._state.adding, obj._state.db = False, "default"
    return list(objs)


__all__ = ["bound_cursor", "insert_models"]
