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

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def bound_cursor() -> Iterator[psycopg.Cursor]:
    """A server-side-binding cursor on Django's connection (inside the caller's transaction, if any)."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


__all__ = ["bound_cursor"]
