# SPDX-License-Identifier: AGPL-3.0-or-later
"""Report media as content-addressed files: written before the transaction, served, pruned when orphaned."""
from __future__ import annotations

import io
import os
import time

import pytest
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from reports.models import ReportMedia
from reports.services import media_store
from reports.services.errors import OutsideCity
from reports.services.intake import ReportDraft, file_report
from reports.services.media import MediaUpload
from tests.reports.conftest import inside, photo_with_exif, ward

HANOI = (105.8542, 21.0285)


def _filed_photo_row() -> ReportMedia:
    """File one report with a photo (EXIF and GPS in it) inside Huế; its media row."""
    lon, lat = inside(ward())
    filed = file_report(ReportDraft(category="littering", lon=lon, lat=lat, description="Rác",
                                    media=(MediaUpload("a.jpg", photo_with_exif()),)))
    return ReportMedia.objects.get(report=filed.report)


@pytest.fixture
def media_dir(settings, tmp_path):
    settings.REPORTS_MEDIA_DIR = tmp_path / "media"
    return settings.REPORTS_MEDIA_DIR


def test_store_is_content_addressed_complete_and_idempotent(media_dir):
    digest = media_store.store(b"photo bytes")
    again = media_store.store(b"photo bytes")
    path = media_store.path_of(digest)
    assert digest == again == media_store.digest_of(b"photo bytes")
    assert path.parent.name == digest[:2] and path.read_bytes() == b"photo bytes"
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert not list(path.parent.glob(".incoming-*"))        # the temporary file was renamed, not left


def test_a_write_that_fails_leaves_no_file_and_no_temporary(media_dir, monkeypatch):
    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(media_store.os, "fsync", disk_full)      # the failure a full disk gives at fsync
    with pytest.raises(OSError):
        media_store.store(b"never complete")
    monkeypatch.undo()
    folder = media_store.path_of(media_store.digest_of(b"never complete")).parent
    assert list(folder.iterdir()) == []
    assert media_store.read(media_store.store(b"never complete")) == b"never complete"   # a retry stores it


@pytest.mark.parametrize("name", ["../../etc/passwd", "ab", "A" * 64, "g" * 64, ""])
def test_a_name_that_is_not_a_digest_never_becomes_a_path(media_dir, name):
    with pytest.raises(ValueError):
        media_store.path_of(name)


def _age(path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_prune_removes_only_old_unreferenced_files_and_stale_temporaries(media_dir):
    kept, young, orphan = (media_store.store(data) for data in (b"kept", b"young", b"orphan"))
    stale = media_store.path_of(kept).parent / ".incoming-xyz"
    stale.write_bytes(b"half")
    for digest in (kept, orphan):
        _age(media_store.path_of(digest), 2 * media_store.PRUNE_GRACE_S)
    _age(stale, 2 * media_store.PRUNE_GRACE_S)
    assert media_store.prune({kept}) == 2
    assert media_store.path_of(kept).exists() and media_store.path_of(young).exists()
    assert not media_store.path_of(orphan).exists() and not stale.exists()


@pytest.mark.django_db
def test_a_filed_photo_is_a_file_without_exif_and_its_row_holds_only_the_digest(hue, media_dir, client):
    row = _filed_photo_row()
    assert bytes(row.data) == b"" and len(row.sha256) == 64
    stored = media_store.read(row.sha256)
    assert len(stored) == row.size
    with Image.open(io.BytesIO(stored)) as image:
        assert not image.getexif()
    response = client.get(reverse("reports:media", args=[row.pk]))
    assert response.status_code == 200 and response.content == stored and response["Content-Type"] == "image/jpeg"


@pytest.mark.django_db
def test_a_row_from_before_the_file_store_is_still_served_from_the_database(hue, media_dir, client):
    row = _filed_photo_row()
    ReportMedia.objects.filter(pk=row.pk).update(data=b"legacy jpeg", sha256="")
    assert client.get(reverse("reports:media", args=[row.pk])).content == b"legacy jpeg"


@pytest.mark.django_db
def test_a_missing_file_is_a_404_not_a_server_error(hue, media_dir, client):
    row = _filed_photo_row()
    media_store.path_of(row.sha256).unlink()
    assert client.get(reverse("reports:media", args=[row.pk])).status_code == 404


@pytest.mark.django_db
def test_a_refused_filing_stores_no_row_and_its_orphan_file_is_pruned(hue, media_dir):
    with pytest.raises(OutsideCity):
        file_report(ReportDraft(category="littering", lon=HANOI[0], lat=HANOI[1], description="Hà Nội",
                                media=(MediaUpload("a.jpg", photo_with_exif(size=(65, 49))),)))
    files = [p for p in media_dir.rglob("*") if p.is_file()]
    assert len(files) == 1 and not ReportMedia.objects.filter(sha256=files[0].name).exists()
    call_command("prune_report_media", grace_hours=0, verbosity=0)
    assert not files[0].exists()


@pytest.mark.django_db
def test_prune_keeps_every_file_a_row_references(hue, media_dir):
    digest = _filed_photo_row().sha256
    call_command("prune_report_media", grace_hours=0, verbosity=0)
    assert media_store.path_of(digest).exists()
