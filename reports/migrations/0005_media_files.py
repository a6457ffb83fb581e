# SPDX-License-Identifier: AGPL-3.0-or-later
"""Report media bytes move to files named by their SHA-256 (reports/services/media_store.py).

Existing rows keep their bytes in ``data`` (now optional) and are still served from it.
"""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reports", "0004_notification_next_attempt_at")]

    operations = [
        migrations.AddField(
            model_name="reportmedia", name="sha256",
            field=models.CharField(blank=True, default="", max_length=64,
                                   help_text="The file's name in REPORTS_MEDIA_DIR (its content's SHA-256)."),
        ),
        migrations.AlterField(
            model_name="reportmedia", name="data",
            field=models.BinaryField(blank=True, default=b"", help_text="Only rows from before the file store."),
        ),
    ]
