# SPDX-License-Identifier: AGPL-3.0-or-later
"""Outbox back-off: a failed notification is not retried before ``next_attempt_at``."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reports", "0003_media_storage_external")]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, help_text="After a failure: not retried before this (back-off).",
                                       null=True),
        ),
    ]
