# SPDX-License-Identifier: AGPL-3.0-or-later
"""Photos: an upright JPEG loses its metadata without being decoded; anything else is re-encoded or refused.

The JPEGs are made with Pillow in memory (EXIF with GPS and device, ICC, XMP,
comments, trailers, restart markers, progressive scans), then the result is
decoded again with Pillow: the stripped photo must show exactly the same
pixels and carry none of the metadata.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from reports.services.errors import BadMedia
from reports.services.jpeg import read_jpeg, strip_jpeg
from reports.services.media import MAX_SIDE, MediaUpload, clean_photo, strip_upright_jpeg
from tests.reports.conftest import photo_with_exif

SECRETS = (b"SecretMake", b"SecretModel", b"SERIAL-777", b"SecretSoftware", b"Exif\x00\x00", b"ICC_PROFILE",
           b"http://ns.adobe.com/xap", b"SECRET-COMMENT", b"SECRET-TRAILER")


def jpeg(size=(96, 64), mode="RGB", exif: Image.Exif | None = None, **save) -> bytes:
    """A noisy picture (so that the entropy data has many stuffed 0xFF bytes) saved as JPEG."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, exif=exif or Image.Exif(), **save)
    return out.getvalue()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def secret_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.open(io.BytesIO(photo_with_exif())).getexif()
    if orientation is not None:
        exif[0x0112] = orientation
    return exif


def assert_no_metadata(data: bytes) -> None:
    for secret in SECRETS:
        assert secret not in data, secret
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and not image.getexif()
        assert not {"exif", "icc_profile", "xmp", "comment"} & set(image.info)
        image.load()


def test_upright_jpeg_keeps_its_pixels_and_loses_exif_gps_icc_xmp_comment_and_trailer():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Make="SecretMake"/></x:xmpmeta>'
    raw = jpeg(exif=secret_exif(), icc_profile=icc, xmp=xmp, comment=b"SECRET-COMMENT")
    raw += b"SEFH SECRET-TRAILER" + jpeg(size=(8, 8))       # a phone's trailer, with a JPEG of its own
    assert all(secret in raw for secret in SECRETS)          # the test photo really carries them
    clean = clean_photo(MediaUpload("p.jpg", raw))
    assert (clean.width, clean.height) == (96, 64)
    assert_no_metadata(clean.data)
    assert np.array_equal(pixels(clean.data), pixels(raw))   # lossless: the same compressed data
    assert strip_upright_jpeg(raw) is not None              # and it took the path without a decoder


@pytest.mark.parametrize("save", [{"progressive": True}, {"restart_marker_blocks": 2}, {"subsampling": 0}],
                         ids=["progressive", "restart-markers", "4:4:4"])
def test_progressive_and_restart_jpegs_are_stripped_losslessly(save):
    raw = jpeg(exif=secret_exif(), **save)
    clean = strip_upright_jpeg(raw)
    assert clean is not None
    assert_no_metadata(clean.data)
    assert np.array_equal(pixels(clean.data), pixels(raw))


def test_comments_between_progressive_scans_are_dropped():
    raw = jpeg(progressive=True)
    second_table = raw.index(b"\xff\xc4", raw.index(b"\xff\xda") + 2)   # a DHT between two scans
    comment = b"SECRET-COMMENT between scans"
    raw = raw[:second_table] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + raw[second_table:]
    with Image.open(io.BytesIO(raw)) as image:
        image.load()                                        # still a valid JPEG for the decoder
    clean = strip_upright_jpeg(raw)
    assert clean is not None and b"SECRET-COMMENT" not in clean.data
    assert np.array_equal(pixels(clean.data), pixels(raw))


def test_grey_jpeg_is_stripped_and_stays_grey():
    clean = strip_upright_jpeg(jpeg(mode="L", exif=secret_exif()))
    assert clean is not None
    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.mode == "L"


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_rotated_jpeg_is_reencoded_upright(orientation):
    raw = jpeg(exif=secret_exif(orientation))
    assert strip_upright_jpeg(raw) is None
    clean = clean_photo(MediaUpload("p.jpg", raw))
    assert (clean.width, clean.height) == ((64, 96) if orientation in (6, 8) else (96, 64))
    assert_no_metadata(clean.data)


def _app1(payload: bytes) -> bytes:
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload


def _tiff(order: str, orientation: int | None, kind: int = 3) -> bytes:
    """An EXIF block by hand (Pillow writes little-endian only): one IFD with Make and maybe Orientation."""
    head = (b"II*\x00" if order == "little" else b"MM\x00*") + (8).to_bytes(4, order)
    entries = [(0x010F, 2, 4, b"Cam\x00")]
    if orientation is not None:
        entries.append((0x0112, kind, 1, orientation.to_bytes(2, order) + b"\x00\x00"))
    ifd = len(entries).to_bytes(2, order) + b"".join(
        tag.to_bytes(2, order) + typ.to_bytes(2, order) + count.to_bytes(4, order) + value
        for tag, typ, count, value in entries) + bytes(4)
    return b"Exif\x00\x00" + head + ifd


@pytest.mark.parametrize("segments", [
    [_tiff("little", 6)], [_tiff("big", 6)], [_tiff("big", 1)], [_tiff("big", None)], [],
    [b"http://ns.adobe.com/xap/1.0/\x00<x tiff:Orientation=\"8\"/>"],
    [b"http://ns.adobe.com/xap/1.0/\x00<x><tiff:Orientation>6</tiff:Orientation></x>"],
    [_tiff("little", 1), b"http://ns.adobe.com/xap/1.0/\x00<x tiff:Orientation=\"8\"/>"],
    [_tiff("little", None), b"http://ns.adobe.com/xap/1.0/\x00<x tiff:Orientation=\"3\"/>"],
], ids=["II-6", "MM-6", "MM-1", "MM-none", "none", "xmp-attr-8", "xmp-elem-6", "exif-wins", "xmp-fallback"])
def test_orientation_is_read_as_pillow_reads_it(segments):
    plain = jpeg(size=(32, 16))
    raw = plain[:2] + b"".join(_app1(s) for s in segments) + plain[2:]
    with Image.open(io.BytesIO(raw)) as image:
        expected = image.getexif().get(0x0112, 1)
    assert read_jpeg(raw).orientation == expected
    clean = clean_photo(MediaUpload("p.jpg", raw))
    assert (clean.width, clean.height) == ((16, 32) if expected in (5, 6, 7, 8) else (32, 16))


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_an_unreadable_orientation_is_left_to_pillow():
    plain = jpeg(size=(32, 16))
    for block in (_tiff("little", 6, kind=4), b"Exif\x00\x00II*\x00\xff\x00\x00\x00"):   # LONG; IFD out of bounds
        raw = plain[:2] + _app1(block) + plain[2:]
        assert read_jpeg(raw).orientation is None and strip_upright_jpeg(raw) is None
        assert_no_metadata(clean_photo(MediaUpload("p.jpg", raw)).data)


def test_cmyk_adobe_and_oversized_jpegs_are_reencoded():
    cmyk = jpeg(mode="CMYK")
    assert b"Adobe" in cmyk and strip_upright_jpeg(cmyk) is None
    clean = clean_photo(MediaUpload("c.jpg", cmyk))
    assert Image.open(io.BytesIO(clean.data)).mode == "RGB"
    wide = jpeg(size=(MAX_SIDE + 10, 20))
    assert strip_upright_jpeg(wide) is None
    assert clean_photo(MediaUpload("w.jpg", wide)).width == MAX_SIDE


def _without(data: bytes, marker: bytes) -> bytes:
    i = data.index(marker)
    return data[:i] + data[i + 2 + int.from_bytes(data[i + 2:i + 4], "big"):]


@pytest.mark.parametrize("broken", [
    lambda d: d[:len(d) * 2 // 3],                           # truncated: no end marker
    lambda d: _without(d, b"\xff\xc0"),                      # no frame header
    lambda d: _without(d, b"\xff\xda"),                      # no scan header
    lambda d: d[:4] + b"\xff\xff" + d[6:],                   # first segment runs past the end of the file
], ids=["truncated", "no-sof", "no-sos", "bad-length"])
def test_a_jpeg_broken_after_stripping_is_refused(broken):
    raw = broken(jpeg(exif=secret_exif()))
    layout = read_jpeg(raw)
    assert layout is None or not layout.decodable
    with pytest.raises(BadMedia, match="not a readable image"):
        clean_photo(MediaUpload("broken.jpg", raw))


def test_a_jpeg_without_its_end_marker_is_decoded_and_reencoded_not_stripped():
    raw = jpeg(exif=secret_exif())[:-2] + b"\x00" * 64 + b"SECRET-TRAILER"
    assert read_jpeg(raw) is None
    clean = clean_photo(MediaUpload("p.jpg", raw))              # the decoder still reads every block
    assert_no_metadata(clean.data)


def test_an_mpo_keeps_only_its_first_picture():
    first, second = (Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (40, 200))
    out = io.BytesIO()
    first.save(out, format="MPO", save_all=True, append_images=[second], exif=secret_exif())
    raw = out.getvalue()
    assert Image.open(io.BytesIO(raw)).format == "MPO"
    clean = clean_photo(MediaUpload("m.jpg", raw))
    assert_no_metadata(clean.data)
    assert b"MPF\x00" not in clean.data and clean.data.count(b"\xff\xd8") == 1
    assert np.array_equal(pixels(clean.data), np.asarray(first))


def test_strip_jpeg_drops_a_jfif_thumbnail():
    raw = jpeg(size=(16, 16))
    app0 = raw.index(b"\xff\xe0")
    assert raw[app0 + 2:app0 + 4] == b"\x00\x10"               # Pillow writes JFIF without a thumbnail
    jfif = raw[app0 + 4:app0 + 16] + b"\x02\x02" + bytes(2 * 2 * 3)
    with_thumbnail = raw[:app0] + b"\xff\xe0" + (len(jfif) + 2).to_bytes(2, "big") + jfif + raw[app0 + 18:]
    assert strip_jpeg(with_thumbnail) == strip_jpeg(raw)
