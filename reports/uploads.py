# SPDX-License-Identifier: AGPL-3.0-or-later
"""Report filings' multipart bodies, parsed in one pass in memory.

Why: Django's ``MultiPartParser`` cost 610–730 µs of CPU for one Open311
filing (five fields and a 233 KiB photo, timeit on the 2-core machine): its
``LazyStream`` hands every field the rest of the current 64 KiB chunk and
takes it back ("unget"), copying it several times per field, and it parses
each part's ``Content-Disposition`` through ``email.message``. A larger
``chunk_size`` was measured too and is slower (more to copy per field: ~1 ms
at 256 KiB). This handler reads a body that Django would keep in memory
anyway (``FILE_UPLOAD_MAX_MEMORY_SIZE``, 2.5 MiB by default), splits it at
the boundaries with ``bytes.find`` and remembers parsed header lines (they
repeat from one filing to the next): ~200 µs (docs/reports.md).

It answers only for the common shape: parts separated by CRLF, each with a
``Content-Disposition`` naming it and headers within Django's 1 KiB, no
``Content-Transfer-Encoding``, nothing around the boundaries. Anything else
is handed, in full, to Django's own parser with the default handlers. Where
it answers, the result is what Django's parser with its memory handler
gives: the same ``QueryDict`` and ``InMemoryUploadedFile`` objects, the same
header semantics (Django's loop, Django's ``parse_header_parameters``), file
names sanitised by Django's ``sanitize_file_name``, and the
``DATA_UPLOAD_MAX_NUMBER_FIELDS`` / ``DATA_UPLOAD_MAX_MEMORY_SIZE`` /
``DATA_UPLOAD_MAX_NUMBER_FILES`` errors raised at the same part. Larger
bodies (videos) stream to temporary files through Django's parser as before.
The size limits of photos and videos are checked afterwards, as before.
"""
from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass
from io import UnsupportedOperation

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, MemoryFileUploadHandler
from django.http import HttpRequest, QueryDict
from django.http.multipartparser import FIELD, FILE, MAX_TOTAL_HEADER_SIZE, MultiPartParser, TooManyFilesSent
from django.utils.datastructures import MultiValueDict
from django.utils.encoding import force_str
from django.utils.http import parse_header_parameters

_CACHED_LINE = 200   # header lines up to this length are remembered (Content-Disposition of the usual fields)


class Unusual(Exception):
    """The body is not in the common shape: Django's own parser reads it."""


def use_one_pass_multipart(request: HttpRequest) -> None:
    """Parse this request's multipart body with :class:`OnePassMultipartHandler` (before POST/FILES are read).

    Only when the handlers are Django's defaults (memory first): that is what the handler reproduces.
    """
    handlers = request.upload_handlers
    if handlers and isinstance(handlers[0], MemoryFileUploadHandler):
        request.upload_handlers = [OnePassMultipartHandler(request, fallback=list(handlers)), *handlers]


class OnePassMultipartHandler(FileUploadHandler):
    """Takes over a small multipart body (``handle_raw_input``); passes everything else on untouched."""

    def __init__(self, request: HttpRequest | None = None, fallback: list[FileUploadHandler] | None = None) -> None:
        super().__init__(request)
        self.fallback = fallback or []

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        size = _body_size(input_data, content_length)
        if size is None or size > settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            return None                       # Django's parser, streaming (and to temporary files when large)
        body = _read_exactly(input_data, size)
        try:
            if len(body) != size:
                raise Unusual("body shorter than announced")
            return parse_multipart(body, boundary, encoding or settings.DEFAULT_CHARSET)
        except Unusual:
            return MultiPartParser(META, io.BytesIO(body), self.fallback, encoding).parse()

    def receive_data_chunk(self, raw_data, start):
        return raw_data                       # not taken over: the next handler stores it

    def file_complete(self, file_size):
        return None


def _body_size(input_data, content_length: int | None) -> int | None:
    """The body's real size when the stream can tell (ASGI spools it), else Content-Length (WSGI enforces it).

    As Django's ``MemoryFileUploadHandler.handle_raw_input`` decides.
    """
    stream = getattr(input_data, "_stream", input_data)
    try:
        size = stream.seek(0, os.SEEK_END)
    except (UnsupportedOperation, AttributeError):
        return content_length
    stream.seek(0)
    return size


def _read_exactly(stream, size: int) -> bytes:
    parts, left = [], size
    while left > 0:
        data = stream.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


@dataclass(slots=True)
class _Counts:
    """Django's limits (read once per body) and its counters of fields, field bytes and files.

    ``post_keys`` counts fields and raw parts as Django does: the empty part before the first boundary too.
    """

    max_fields: int | None
    max_bytes: int | None
    max_files: int | None
    post_keys: int = 1
    field_bytes: int = 0
    files: int = 0


def parse_multipart(body: bytes, boundary: bytes, encoding: str) -> tuple[QueryDict, MultiValueDict]:
    """``(POST, FILES)`` of a multipart/form-data body, as Django's parser gives them; :class:`Unusual` if odd."""
    separator = b"--" + boundary
    if not body.startswith(separator + b"\r\n"):
        raise Unusual("preamble")
    post, files = QueryDict(mutable=True), MultiValueDict()
    counts = _Counts(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS, settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
                     settings.DATA_UPLOAD_MAX_NUMBER_FILES)
    start = len(separator)              # a part's stream starts right after its separator, at the CRLF
    while True:
        following = body.find(separator, start)
        if following < 0 or body[following - 2:following] != b"\r\n":
            raise Unusual("part not ended by CRLF and a boundary")
        end = following - 2
        header_end = body.find(b"\r\n\r\n", start, min(start + MAX_TOTAL_HEADER_SIZE, end))
        if header_end < 0:
            raise Unusual("no headers within Django's limit")
        kind, meta = _part_headers(body[start:header_end])
        payload = body[header_end + 4:end]
        _add_part(post, files, counts, kind, meta, payload, encoding)
        start = following + len(separator)
        if body[start:start + 2] == b"--" and body[start + 2:] in (b"", b"\r\n"):
            break
        if body[start:start + 2] != b"\r\n":
            raise Unusual("text after a boundary")
    counts.post_keys += 1               # the closing "--" is a raw part for Django too
    _check_fields(counts)
    post._mutable = False
    return post, files


def _part_headers(raw: bytes) -> tuple[str, dict]:
    """Django's ``parse_boundary_stream`` header loop (its blank first line included), with lines remembered."""
    kind, meta = "raw", {}
    for line in raw.split(b"\r\n"):
        try:
            main_value_pair, params = _header_parameters(line.decode())
            name, value = main_value_pair.split(":", 1)
            params = {k: v.encode() for k, v in params}
        except ValueError:              # invalid header (undecodable, no colon, bad RFC 2231 charset)
            continue
        if name == "content-disposition":
            kind = FIELD
            if params.get("filename"):
                kind = FILE
        meta[name] = value, params
    return kind, meta


def _header_parameters(line: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    if len(line) > _CACHED_LINE:
        key, params = parse_header_parameters(line)
        return key, tuple(params.items())
    return _remembered_header_parameters(line)


@functools.lru_cache(maxsize=1024)
def _remembered_header_parameters(line: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``parse_header_parameters`` goes through ``email.message`` (14 µs a line); filings repeat their lines."""
    key, params = parse_header_parameters(line)
    return key, tuple(params.items())


def _add_part(post: QueryDict, files: MultiValueDict, counts: _Counts, kind: str, meta: dict, payload: bytes,
              encoding: str) -> None:
    """One part into POST or FILES, with Django's checks in Django's order."""
    if kind not in (FIELD, FILE) or "content-transfer-encoding" in meta:
        raise Unusual("raw part or transfer encoding")
    try:
        disposition = meta["content-disposition"][1]
        field_name = force_str(disposition["name"].strip(), encoding, errors="replace")
    except (KeyError, IndexError, AttributeError):
        raise Unusual("part without a name") from None
    if kind == FIELD:
        counts.post_keys += 1
        _check_fields(counts)
        limit = counts.max_bytes
        data = payload if limit is None else payload[:limit - counts.field_bytes]
        counts.field_bytes += len(data) + len(field_name) + 2   # + 2: as the urlencoded check counts "&="
        if limit is not None and counts.field_bytes > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        post.appendlist(field_name, force_str(data, encoding, errors="replace"))
        return
    counts.files += 1
    if counts.max_files is not None and counts.files > counts.max_files:
        raise TooManyFilesSent("The number of files exceeded settings.DATA_UPLOAD_MAX_NUMBER_FILES.")
    # sanitize_file_name does not use its instance (Django 5.2); the tests compare with Django's parser.
    file_name = MultiPartParser.sanitize_file_name(None, force_str(disposition["filename"], encoding,
                                                                   errors="replace"))
    if not file_name:
        return
    content_type, extra = meta.get("content-type", ("", {}))
    files.appendlist(field_name, InMemoryUploadedFile(io.BytesIO(payload), field_name, file_name,
                                                      content_type.strip(), len(payload), extra.get("charset"),
                                                      extra))


def _check_fields(counts: _Counts) -> None:
    # Django allows two raw parts more than DATA_UPLOAD_MAX_NUMBER_FIELDS: the empty ones around the boundaries.
    if counts.max_fields is not None and counts.max_fields + 2 < counts.post_keys:
        raise TooManyFieldsSent("The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.")
