# SPDX-License-Identifier: AGPL-3.0-or-later
"""Photos and short videos: check type and size, strip location and device data.

A photo's *content* decides its type, never the file name or the client's
content type. An upright JPEG within the limits loses its metadata segments
losslessly (:mod:`reports.services.jpeg`); any other photo is decoded with
Pillow, turned upright, and re-encoded as JPEG with no EXIF, XMP or ICC
block. Either way GPS position, camera make, model and serial number are
gone. A video is accepted only as MP4/QuickTime or WebM (magic bytes), no
longer than ``REPORTS_MAX_VIDEO_SECONDS`` (the MP4 movie header's or the
WebM Duration / last frame time), and its MP4 location atom (``©xyz``) is
blanked.
"""
from __future__ import annotations

import io
import math
import re
import struct
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from reports.services.errors import BadMedia, MediaTooLarge
from reports.services.jpeg import read_jpeg

MAX_PHOTOS = 5
MAX_VIDEOS = 1
MAX_PIXELS = 40_000_000
MAX_SIDE = 2048
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "MPO"})


def limits() -> dict[str, int]:
    return {
        "photo_bytes": int(getattr(settings, "REPORTS_MAX_PHOTO_BYTES", 8 * 1024 * 1024)),
        "video_bytes": int(getattr(settings, "REPORTS_MAX_VIDEO_BYTES", 20 * 1024 * 1024)),
        "video_seconds": int(getattr(settings, "REPORTS_MAX_VIDEO_SECONDS", 60)),
        "photos": MAX_PHOTOS,
        "videos": MAX_VIDEOS,
    }


@dataclass(frozen=True, slots=True)
class MediaUpload:
    """What a client sent: a name (for messages only) and the bytes."""

    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class CleanMedia:
    kind: str            # photo | video
    content_type: str
    data: bytes
    width: int | None = None
    height: int | None = None
    digest: str = ""     # set once the bytes are in the file store (reports.services.media_store)


def _is_video(data: bytes) -> str | None:
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "video/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    return None


def clean_photo(upload: MediaUpload) -> CleanMedia:
    """Check a photo and return it without any metadata.

    An upright JPEG that is small enough keeps its compressed image data and
    loses every APPn/COM segment and anything after the end marker (lossless,
    and no decoder: :func:`strip_upright_jpeg`); anything else is decoded and
    re-encoded as JPEG with no EXIF, XMP or ICC block.
    """
    if len(upload.data) > limits()["photo_bytes"]:
        raise MediaTooLarge(f"photo {upload.name!r} is {len(upload.data) // 1024} KiB; the limit is "
                            f"{limits()['photo_bytes'] // 1024} KiB")
    return strip_upright_jpeg(upload.data) or _reencode_photo(upload)


def strip_upright_jpeg(data: bytes) -> CleanMedia | None:
    """The photo stripped of its metadata when it is a plain upright JPEG within the limits; else ``None``.

    What Pillow checked here before (format, mode, size, orientation, and a
    re-parse of the stripped file) is read from the one marker walk of
    :func:`~reports.services.jpeg.read_jpeg`: 8-bit grey or three-component
    colour, no more than ``MAX_PIXELS`` nor ``MAX_SIDE``, orientation 1 (EXIF,
    else XMP, as Pillow's ``getexif``), and a complete structure after
    stripping (tables, one frame, well-formed scans, end marker). An Adobe
    segment's colour transform would be lost with it, so such a photo is
    re-encoded. Everything else goes to :func:`_reencode_photo`, which
    decides as before.
    """
    layout = read_jpeg(data)
    if (layout is None or not layout.decodable or layout.orientation != 1 or layout.adobe
            or layout.precision != 8 or layout.components not in (1, 3)
            or layout.width * layout.height > MAX_PIXELS or max(layout.width, layout.height) > MAX_SIDE):
        return None
    return CleanMedia("photo", "image/jpeg", layout.data, layout.width, layout.height)


def _reencode_photo(upload: MediaUpload) -> CleanMedia:
    """Decode with Pillow (its content decides the type), turn upright, shrink, re-encode without metadata."""
    try:
        with Image.open(io.BytesIO(upload.data)) as probe:
            if probe.format not in IMAGE_FORMATS:
                raise BadMedia(f"{upload.name!r} is a {probe.format} image; send JPEG, PNG or WebP")
            if probe.width * probe.height > MAX_PIXELS:
                raise BadMedia(f"photo {upload.name!r} has too many pixels ({probe.width}×{probe.height})")
            probe.load()
            image = ImageOps.exif_transpose(probe)  # keep it upright once the orientation tag is gone
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise BadMedia(f"{upload.name!r} is not a readable image (JPEG, PNG or WebP)") from None
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, optimize=False)  # no exif=, no icc_profile=: nothing carried over
    return CleanMedia("photo", "image/jpeg", out.getvalue(), image.width, image.height)


_MP4_XYZ = re.compile(rb"\xa9xyz")


def mp4_duration_s(data: bytes) -> float | None:
    r"""Duration from the MP4/QuickTime movie header (``mvhd``), or ``None`` when there is none.

    >>> head = b"\x00\x00\x00\x6cmvhd" + bytes(4) + bytes(8) + (1000).to_bytes(4, "big") + (9500).to_bytes(4, "big")
    >>> mp4_duration_s(b"\x00\x00\x00\x18ftypmp42" + bytes(12) + head + bytes(16))
    9.5
    """
    i = data.find(b"mvhd")
    if i < 4 or len(data) < i + 36:
        return None
    if data[i + 4] == 1:
        timescale, duration = int.from_bytes(data[i + 24:i + 28], "big"), int.from_bytes(data[i + 28:i + 36], "big")
    else:
        timescale, duration = int.from_bytes(data[i + 16:i + 20], "big"), int.from_bytes(data[i + 20:i + 24], "big")
    return duration / timescale if timescale else None


# Matroska/WebM (EBML) element ids, with their length marker bits, as in the specification
# (https://www.matroska.org/technical/elements.html, RFC 9559).
_EBML, _SEGMENT, _INFO, _TIMESTAMP_SCALE, _DURATION = 0x1A45DFA3, 0x18538067, 0x1549A966, 0x2AD7B1, 0x4489
_CLUSTER, _CLUSTER_TIMESTAMP, _SIMPLE_BLOCK, _BLOCK_GROUP, _BLOCK = 0x1F43B675, 0xE7, 0xA3, 0xA0, 0xA1
# Children of a Segment: where a Cluster of unknown size ends (live recordings write such clusters).
_SEGMENT_CHILDREN = frozenset({0x114D9B74, _INFO, 0x1654AE6B, 0x1C53BB6B, 0x1941A469, 0x1043A770, 0x1254C367,
                               _CLUSTER})


def _vint(data: bytes, i: int, keep_marker: bool) -> tuple[int, int, bool]:
    """An EBML variable-length integer at ``i``: (value, next offset, all value bits set = unknown size)."""
    if i >= len(data) or data[i] == 0:
        raise ValueError("bad EBML length")
    length = 9 - data[i].bit_length()
    if i + length > len(data):
        raise ValueError("truncated EBML element")
    value = int.from_bytes(data[i:i + length], "big")
    bits = 7 * length
    unknown = (value & ((1 << bits) - 1)) == (1 << bits) - 1
    return (value if keep_marker else value & ((1 << bits) - 1)), i + length, unknown


def _elements(data: bytes, start: int, end: int, stop_ids: frozenset[int] = frozenset()):
    """``(id, payload start, payload end)`` of the elements between ``start`` and ``end``.

    An element of unknown size runs to ``end``; iteration stops before an id in ``stop_ids``.
    """
    i = start
    while i < end:
        element, j = _vint(data, i, keep_marker=True)[:2]
        if element in stop_ids:
            return
        size, j, unknown = _vint(data, j, keep_marker=False)
        stop = min(end, j + size) if not unknown else (_unknown_end(data, j, end) if element == _CLUSTER else end)
        yield element, j, stop, unknown
        i = stop


def _unknown_end(data: bytes, start: int, end: int) -> int:
    """Where a Cluster of unknown size ends: before the next Segment-level element (or at ``end``)."""
    stop = start
    for _element, _i, stop, _ in _elements(data, start, end, _SEGMENT_CHILDREN):
        pass
    return stop


def _uint(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end], "big")


def _block_starts(data: bytes, element: int, start: int, end: int) -> list[int]:
    """Where the Block payloads of a cluster child are: a SimpleBlock itself, or the Blocks of a BlockGroup."""
    if element == _SIMPLE_BLOCK:
        return [start]
    if element == _BLOCK_GROUP:
        return [i for child, i, _stop, _ in _elements(data, start, end) if child == _BLOCK]
    return []


def _clusters_end_ticks(data: bytes, start: int, end: int) -> int | None:
    """The latest block time (in timestamp ticks) of the clusters: a length when no Duration was written.

    A block starts with its track number (a variable-length integer), then its
    time relative to the cluster's timestamp (signed 16-bit).
    """
    latest = None
    for element, i, stop, _ in _elements(data, start, end):
        if element != _CLUSTER:
            continue
        base = 0
        for child, j, child_end, _ in _elements(data, i, stop):
            if child == _CLUSTER_TIMESTAMP:
                base = _uint(data, j, child_end)
            for block in _block_starts(data, child, j, child_end):
                k = _vint(data, block, keep_marker=False)[1]
                relative = int.from_bytes(data[k:k + 2], "big", signed=True)
                latest = max(latest or 0, base + relative)
    return latest


def webm_duration_s(data: bytes) -> float | None:
    """Length of a WebM/Matroska file: the Info Duration, else the last block's time; ``None`` if unreadable.

    Duration is a float counted in TimestampScale nanoseconds (default 1 ms).
    Recordings streamed as they are made (a browser's MediaRecorder) carry no
    Duration: the clusters' block times tell the length then.
    """
    try:
        segment = next(((i, stop) for element, i, stop, _ in _elements(data, 0, len(data))
                        if element == _SEGMENT), None)
        if segment is None:
            return None
        scale, duration = 1_000_000, None
        for element, i, stop, _ in _elements(data, *segment, stop_ids=frozenset({_CLUSTER})):
            if element == _INFO:
                for child, j, end, _ in _elements(data, i, stop):
                    if child == _TIMESTAMP_SCALE:
                        scale = _uint(data, j, end) or scale
                    elif child == _DURATION and end - j in (4, 8):
                        duration = struct.unpack(">f" if end - j == 4 else ">d", data[j:end])[0]
        if duration is None:
            duration = _clusters_end_ticks(data, *segment)
        if duration is None or not math.isfinite(duration) or duration < 0:
            return None
        return duration * scale / 1e9
    except (ValueError, IndexError, struct.error):
        return None


def clean_video(upload: MediaUpload) -> CleanMedia:
    content_type = _is_video(upload.data)
    if content_type is None:
        raise BadMedia(f"{upload.name!r} is neither an image nor an MP4/WebM video")
    if len(upload.data) > limits()["video_bytes"]:
        raise MediaTooLarge(f"video {upload.name!r} is {len(upload.data) // 1024} KiB; the limit is "
                            f"{limits()['video_bytes'] // 1024} KiB")
    if content_type == "video/mp4":
        seconds = mp4_duration_s(upload.data)
        if seconds is None:
            raise BadMedia(f"{upload.name!r} is not a readable MP4 video (no movie header)")
    else:
        seconds = webm_duration_s(upload.data)
        if seconds is None:
            raise BadMedia(f"{upload.name!r} is not a readable WebM video (no duration and no timed frames)")
    if seconds > limits()["video_seconds"]:
        raise BadMedia(f"video {upload.name!r} lasts {seconds:.0f} s; send a short video "
                       f"(≤ {limits()['video_seconds']} s)")
    data = bytearray(upload.data)
    for match in _MP4_XYZ.finditer(upload.data):
        start = match.start() - 4
        size = int.from_bytes(upload.data[start:start + 4], "big") if start >= 0 else 0
        end = min(len(data), start + size) if size >= 8 else match.end()
        data[match.end():end] = bytes(end - match.end())  # the "+16.46+107.59/" location string
    return CleanMedia("video", content_type, bytes(data))


def clean_uploads(uploads: list[MediaUpload]) -> list[CleanMedia]:
    """Check every upload before anything is stored; the first bad one refuses them all."""
    cleaned: list[CleanMedia] = []
    for upload in uploads:
        if not upload.data:
            raise BadMedia(f"{upload.name!r} is empty")
        cleaned.append(clean_video(upload) if _is_video(upload.data) else clean_photo(upload))
    photos = sum(1 for c in cleaned if c.kind == "photo")
    videos = len(cleaned) - photos
    if photos > MAX_PHOTOS or videos > MAX_VIDEOS:
        raise BadMedia(f"at most {MAX_PHOTOS} photos and {MAX_VIDEOS} short video per report "
                       f"(got {photos} photos, {videos} videos)")
    return cleaned
