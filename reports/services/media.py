# SPDX-License-Identifier: AGPL-3.0-or-later
"""Photos and short videos: check type and size, strip location and device data.

A photo is decoded with Pillow (its *content* decides the type, never the
file name or the client's content type), turned upright, and re-encoded
as JPEG with no EXIF, XMP or ICC block: GPS position, camera make, model
and serial number are gone. A video is accepted only as MP4/QuickTime or
WebM (magic bytes) and its MP4 location atom (``©xyz``) is blanked.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from reports.services.errors import BadMedia, MediaTooLarge

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


def _is_video(data: bytes) -> str | None:
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "video/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    return None


def clean_photo(upload: MediaUpload) -> CleanMedia:
    """Check a photo and return it without any metadata.

    An upright baseline JPEG that is small enough keeps its compressed image
    data and loses every APPn/COM segment and anything after the end marker
    (lossless and fast: :func:`strip_jpeg`); anything else is decoded and
    re-encoded as JPEG with no EXIF, XMP or ICC block.
    """
    if len(upload.data) > limits()["photo_bytes"]:
        raise MediaTooLarge(f"photo {upload.name!r} is {len(upload.data) // 1024} KiB; the limit is "
                            f"{limits()['photo_bytes'] // 1024} KiB")
    try:
        with Image.open(io.BytesIO(upload.data)) as probe:
            if probe.format not in IMAGE_FORMATS:
                raise BadMedia(f"{upload.name!r} is a {probe.format} image; send JPEG, PNG or WebP")
            if probe.width * probe.height > MAX_PIXELS:
                raise BadMedia(f"photo {upload.name!r} has too many pixels ({probe.width}×{probe.height})")
            upright = probe.getexif().get(0x0112, 1) == 1
            if (probe.format == "JPEG" and upright and max(probe.size) <= MAX_SIDE
                    and probe.mode in ("RGB", "L")):
                stripped = strip_jpeg(upload.data)
                if stripped is not None:
                    with Image.open(io.BytesIO(stripped)) as check:
                        check.verify()
                    return CleanMedia("photo", "image/jpeg", stripped, probe.width, probe.height)
            probe.load()
            image = ImageOps.exif_transpose(probe)  # keep it upright once the orientation tag is gone
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise BadMedia(f"{upload.name!r} is not a readable image (JPEG, PNG or WebP)") from None
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, optimize=False)  # no exif=, no icc_profile=: nothing carried over
    return CleanMedia("photo", "image/jpeg", out.getvalue(), image.width, image.height)


_KEEP_APP0 = b"JFIF\x00"


def strip_jpeg(data: bytes) -> bytes | None:
    r"""The JPEG without APP1–APP15 (EXIF, XMP, ICC, maker notes), COM, non-JFIF APP0, or trailing bytes.

    Returns ``None`` when the marker structure is not a plain JPEG (the caller re-encodes then).

    >>> strip_jpeg(b"\xff\xd8\xff\xe1\x00\x08Exif\x00\x00\xff\xda\x00\x02\x01\x02\xff\xd9tail")
    b'\xff\xd8\xff\xda\x00\x02\x01\x02\xff\xd9'
    """
    if data[:2] != b"\xff\xd8":
        return None
    out, i, n = bytearray(b"\xff\xd8"), 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:          # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        segment = data[i:i + 2 + length]
        if marker == 0xDA:          # start of scan: copy the image data up to the end marker
            end = data.find(b"\xff\xd9", i + 2 + length)
            if end < 0:
                return None
            out += data[i:end + 2]
            return bytes(out)
        drop = 0xE1 <= marker <= 0xEF or marker == 0xFE or (marker == 0xE0 and segment[4:9] != _KEEP_APP0)
        if not drop:
            out += segment
        i += 2 + length
    return None


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
