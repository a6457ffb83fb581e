# SPDX-License-Identifier: AGPL-3.0-or-later
"""Leave a fifth of each ``twin_feature`` page free, so device liveness updates stay on their page.

Why: ingestion rewrites ``last_seen``/``status`` of every reporting device every
few seconds (``ingestion.sink.Liveness``). Neither column is indexed, so PostgreSQL
can update a row in place on its page (a HOT update: no new entry in the table's
five indexes, two of them GiST) — but only if the page has room. Packed full
(fillfactor 100), each update moved the row to another page with new index
entries, and autovacuum had dead index entries to clean every minute: in
``bench/ingest.py`` its runs lined up with the slowest fire-alarm probes (24 Nov).
The setting applies to pages written from now on; an existing database repacks
its rows with ``VACUUM FULL twin_feature`` (a lock while it runs: do it in a quiet hour).
"""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [("twin", "0003_feature_status_degraded")]

    operations = [
        migrations.RunSQL("ALTER TABLE twin_feature SET (fillfactor = 80)",
                          reverse_sql="ALTER TABLE twin_feature RESET (fillfactor)"),
    ]
