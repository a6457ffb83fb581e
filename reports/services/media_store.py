# SPDX-License-Identifier: AGPL-3.0-or-later
"""Report photos and videos as files, named by their content (SHA-256).

Why files and not a ``bytea`` column: a 233 KiB photo in the database is
~117 TOAST rows and ~240 KiB of WAL inside the filing batch's transaction.
The group-commit writer (:mod:`reports.services.batcher`) spent a quarter of
each batch inserting them, and every commit on the server waited for that WAL
to be flushed. Measured on 25 Nov 2026: the same bench with the bytes left out
of the batch filed 267 reports/s against 160–175 (docs/benchmarks.md).

How a filing stays whole: the request thread writes the (already cleaned)
bytes here *before* the report's transaction — to a temporary file, fsynced,
then renamed, so a file under its final name is always complete. The
transaction stores only the digest. If it rolls back, the file is an orphan
nobody can reach (no row names it); :func:`prune` removes orphans older than
a grace period (``twin prune-report-media``). Content addressing makes a
repeated upload one file and a retried write harmless.

One media directory belongs to one database: :func:`prune` deletes what *its*
database does not reference. Back the directory up with the database.
Rows written before this store existed keep their bytes in ``data``;
:meth:`reports.models.ReportMedia.content` reads either.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

PRUNE_GRACE_S = 24 * 3600
TEMPORARY_PREFIX = ".incoming-"
_DIGEST_CHARS = frozenset("0123456789abcdef")


def root() -> Path:
    return Path(settings.REPORTS_MEDIA_DIR)


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def path_of(digest: str) -> Path:
    """Where a digest's file lives (``ab/abcdef…``); refuses anything that is not a SHA-256 hex digest."""
    if len(digest) != 64 or not set(digest) <= _DIGEST_CHARS:
        raise ValueError(f"not a media digest: {digest[:80]!r}")
    return root() / digest[:2] / digest


def store(data: bytes) -> str:
    """Write ``data`` durably (once per content) and return its digest.

    Plain ``os`` calls rather than ``tempfile``/``pathlib``: a filing pays this
    in its request thread, and ``mkstemp`` alone cost 0.29 ms of CPU of the
    ~1 ms a 233 KiB photo takes (most of the rest is the kernel's copy and
    the fsyncs). The temporary name is random, created exclusively with
    mode 0640 (a stricter umask narrows it, nothing widens it), and renamed
    only once its bytes are on disk.
    """
    digest = digest_of(data)
    final = path_of(digest)
    try:
        if os.stat(final).st_size == len(data):
            return digest
    except FileNotFoundError:
        pass
    folder = os.path.dirname(final)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f"{TEMPORARY_PREFIX}{os.urandom(8).hex()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    os.close(fd)
    os.replace(temporary, final)
    _fsync_directory(folder)       # the rename itself survives a crash
    return digest


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read(digest: str) -> bytes:
    return path_of(digest).read_bytes()


def prune(referenced: set[str], grace_s: float = PRUNE_GRACE_S) -> int:
    """Delete files (and stale temporary files) no row references, older than ``grace_s``; returns how many.

    The grace protects a filing in flight: its file is written before the row
    that names it commits.
    """
    if not root().is_dir():
        return 0
    cutoff = time.time() - grace_s
    removed = 0
    for folder in root().iterdir():
        if not folder.is_dir():
            continue
        for item in folder.iterdir():
            if item.name in referenced or item.stat().st_mtime > cutoff:
                continue
            item.unlink(missing_ok=True)
            removed += 1
    return removed


def _fsync_directory(folder: Path | str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["PRUNE_GRACE_S", "digest_of", "path_of", "prune", "read", "root", "store"]
