# SPDX-License-Identifier: AGPL-3.0-or-later
"""Device liveness (``last_seen``) moves from ``twin_feature`` to a narrow table of its own.

Why: see ``twin.models.features.DeviceLiveness`` — ingestion rewrote feature rows every few seconds
and autovacuum then re-analyzed the whole feature table every minute. Existing values are copied.
The foreign key cascades in the database too: feature deletes done in SQL (layer reloads) must not
trip over a device's liveness row. ``fillfactor = 50`` leaves room on each page for in-place (HOT)
updates of ``last_seen``.
"""
import django.db.models.deletion
from django.db import migrations, models

# The model declares db_constraint=False: this is its foreign key, with the cascade Django 5.2 cannot declare.
CASCADE_SQL = """
ALTER TABLE twin_deviceliveness ADD CONSTRAINT twin_deviceliveness_feature_fk
    FOREIGN KEY (feature_id) REFERENCES twin_feature (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE twin_deviceliveness SET (fillfactor = 50);
"""

COPY_SQL = """
INSERT INTO twin_deviceliveness (feature_id, last_seen)
SELECT id, last_seen FROM twin_feature WHERE last_seen IS NOT NULL
"""

COPY_BACK_SQL = """
UPDATE twin_feature f SET last_seen = dl.last_seen FROM twin_deviceliveness dl WHERE dl.feature_id = f.id
"""


class Migration(migrations.Migration):

    dependencies = [("twin", "0005_admin_area_pieces")]

    operations = [
        migrations.CreateModel(
            name="DeviceLiveness",
            fields=[
                ("feature", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                 related_name="liveness", serialize=False, to="twin.feature",
                                                 db_constraint=False)),
                ("last_seen", models.DateTimeField()),
            ],
            options={"verbose_name_plural": "device liveness"},
        ),
        migrations.RunSQL(CASCADE_SQL,
                          reverse_sql="ALTER TABLE twin_deviceliveness DROP CONSTRAINT twin_deviceliveness_feature_fk"),
        migrations.RunSQL(COPY_SQL, reverse_sql=COPY_BACK_SQL),
        migrations.RemoveField(model_name="feature", name="last_seen"),
    ]
