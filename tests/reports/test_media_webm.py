# SPDX-License-Identifier: AGPL-3.0-or-later
"""WebM videos: their length is read from the EBML structure and a too-long one is refused.

The videos are real VP8 WebM files written by OpenCV's VideoWriter (its FFmpeg
matroska muxer), made in a temporary directory; none is kept in the repository.
"""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from reports.models import Report
from reports.services.errors import BadMedia
from reports.services.intake import ReportDraft, file_report
from reports.services.media import MediaUpload, clean_uploads, webm_duration_s
from tests.reports.conftest import inside, ward


def webm(tmp_path, frames: int, fps: float) -> bytes:
    path = tmp_path / f"v{frames}-{fps}.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (64, 48))
    assert writer.isOpened(), "this OpenCV build cannot write VP8 WebM"
    for i in range(frames):
        writer.write(np.full((48, 64, 3), (i * 7) % 255, np.uint8))
    writer.release()
    data = path.read_bytes()
    assert data[:4] == b"\x1a\x45\xdf\xa3"
    return data


def without_duration(data: bytes) -> bytes:
    """The same file with its Info Duration overwritten by a Void element (what a live recorder writes)."""
    i = data.find(b"\x44\x89")
    size = data[i + 2] & 0x7F
    assert data[i + 2] & 0x80 and size in (4, 8)
    return data[:i] + b"\xec" + bytes([0x80 | (size + 1)]) + bytes(size + 1) + data[i + 3 + size:]


def with_unknown_size_clusters(data: bytes) -> bytes:
    """Every Cluster's size field set to 'unknown' (all ones), as a browser's MediaRecorder streams them."""
    out = bytearray(data)
    for match in re.finditer(b"\x1f\x43\xb6\x75", data):
        j = match.end()
        length = 9 - data[j].bit_length()
        out[j:j + length] = bytes([(1 << (8 - length)) | ((1 << (8 - length)) - 1)]) + b"\xff" * (length - 1)
    return bytes(out)


def test_a_short_webm_is_accepted_with_its_length_read_from_the_duration(tmp_path):
    data = webm(tmp_path, frames=25, fps=10)
    assert webm_duration_s(data) == pytest.approx(2.5, abs=0.05)
    [clean] = clean_uploads([MediaUpload("clip.webm", data)])
    assert clean.kind == "video" and clean.content_type == "video/webm"


def test_a_webm_longer_than_the_limit_is_refused_with_its_length(tmp_path, settings):
    settings.REPORTS_MAX_VIDEO_SECONDS = 60
    data = webm(tmp_path, frames=75, fps=1)
    assert webm_duration_s(data) == pytest.approx(75, abs=0.05)
    with pytest.raises(BadMedia, match=r"lasts 75 s; send a short video \(≤ 60 s\)"):
        clean_uploads([MediaUpload("long.webm", data)])


def test_without_a_duration_the_length_comes_from_the_last_frame_even_in_unknown_size_clusters(tmp_path):
    long, short = webm(tmp_path, frames=75, fps=1), webm(tmp_path, frames=25, fps=10)
    for variant in (without_duration, lambda d: with_unknown_size_clusters(without_duration(d))):
        assert webm_duration_s(variant(long)) == pytest.approx(74, abs=0.05)   # the last frame starts at 74 s
        assert webm_duration_s(variant(short)) == pytest.approx(2.4, abs=0.05)
        with pytest.raises(BadMedia, match="lasts 74 s"):
            clean_uploads([MediaUpload("live.webm", variant(long))])


@pytest.mark.parametrize("data", [b"\x1a\x45\xdf\xa3" + b"\x00" * 40, b"\x1a\x45\xdf\xa3\x84abcd",
                                  b"\x1a\x45\xdf\xa3\x80\x18\x53\x80\x67\x01\xff"])
def test_a_webm_with_no_readable_length_is_refused(data):
    with pytest.raises(BadMedia, match="not a readable WebM"):
        clean_uploads([MediaUpload("broken.webm", data)])


@pytest.mark.django_db
def test_a_too_long_webm_refuses_the_report_and_stores_nothing(tmp_path, hue):
    lon, lat = inside(ward())
    before = Report.objects.count()
    with pytest.raises(BadMedia) as refused:
        file_report(ReportDraft(category="littering", lon=lon, lat=lat, description="Rác",
                                media=(MediaUpload("long.webm", webm(tmp_path, frames=75, fps=1)),)))
    assert refused.value.status == 400
    assert Report.objects.count() == before
