# SPDX-License-Identifier: AGPL-3.0-or-later
"""Time series of features: sensor readings, boat positions, camera counts.

Built for hundreds of millions of rows. The table is created by hand in the
migration as a native PostgreSQL range-partitioned table (one partition per
month plus a DEFAULT partition so no row is ever refused), with:

- a BRIN index on ``time`` (tiny, cheap to maintain, fits append-mostly data);
- a unique btree on ``(feature_id, time)``: the natural key, used for
  de-duplication and for "this feature's series" queries;
- primary key ``(id, time)`` because PostgreSQL requires the partition key in
  every unique constraint; Django addresses rows by ``id``.

There is deliberately **no foreign-key constraint** to ``twin_feature``:
PostgreSQL enforces foreign keys with per-row triggers, which would cap bulk
loading. ``twin.services.observations`` checks feature ids per batch instead.
"""
from __future__ import annotations

from django.contrib.gis.db import models


class Observation(models.Model):
    id = models.BigAutoField(primary_key=True)
    feature = models.ForeignKey(
        "twin.Feature", on_delete=models.DO_NOTHING, db_constraint=False, related_name="observations"
    )
    time = models.DateTimeField()
    values = models.JSONField(default=dict)
    position = models.PointField(srid=4326, null=True, blank=True, spatial_index=False)

    class Meta:
        # The table, its partitions and indexes are made by migration SQL.
        managed = True

    def __str__(self) -> str:
        return f"{self.feature_id}@{self.time.isoformat()}"
