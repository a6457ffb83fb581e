# SPDX-License-Identifier: AGPL-3.0-or-later
"""Photos and videos are already compressed: store them out of line without trying pglz on them.

Why: PostgreSQL tried to compress every 233 KiB JPEG (pglz finds a little to gain in its
headers, then fails the 25 % threshold) — CPU spent on every filing for nothing.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("reports", "0002_report_source_ref")]

    operations = [
        migrations.RunSQL("ALTER TABLE reports_reportmedia ALTER COLUMN data SET STORAGE EXTERNAL",
                          "ALTER TABLE reports_reportmedia ALTER COLUMN data SET STORAGE EXTENDED"),
    ]
