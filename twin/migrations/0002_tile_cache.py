# SPDX-License-Identifier: AGPL-3.0-or-later
"""Per-layer data versions and the vector-tile overview (see docs/tiles.md).

No model, no trigger and nothing in ``twin_feature``:

* ``twin_layer_data_version`` holds one row per layer, bumped by
  ``twin.services.features.write_features`` in the write's own transaction,
  so a tile (or any other derived answer) keyed by the version is never
  served after the data it came from changed. Versions come from one global
  sequence, so a re-created layer never repeats an old layer's version.
* ``twin_tile_overview`` / ``twin_tile_dense`` / ``twin_tile_cluster`` are the
  per-layer point aggregates (feature count and extent; which tiles hold more
  points than a tile draws; precomputed clusters) that tiles of dense point
  layers are built from. They are derived data (rebuilt on demand), hence
  UNLOGGED: a crash empties them and the next tile rebuilds them.

There are no foreign keys to ``twin_layer`` on purpose: Django's test flush
truncates model tables without CASCADE, and the rows of a deleted layer are
inert (readers always match the layer id *and* its version).
"""
from django.db import migrations

FORWARD_SQL = """
CREATE SEQUENCE twin_layer_data_version_seq;
CREATE TABLE twin_layer_data_version (
    layer_id bigint PRIMARY KEY,
    version bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNLOGGED TABLE twin_tile_overview (
    layer_id bigint PRIMARY KEY,
    layer_created timestamptz NOT NULL,
    version bigint NOT NULL,
    features bigint NOT NULL,
    west float8, south float8, east float8, north float8,  -- lon/lat bounds (xmin... are system columns)
    cluster_zoom smallint NOT NULL,
    config text NOT NULL,  -- digest of the tile settings it was built with
    built_at timestamptz NOT NULL DEFAULT now()
);
-- One row per cluster: the 32x32 cells of a zoom-z tile are the zoom-(z+5) tiles,
-- so (gx, gy) is the cell's global index and (gx >> 5, gy >> 5) its tile. A tile
-- plus the neighbours' edge cells in its buffer is one range: ~1,100 rows, not 9x1,024.
CREATE UNLOGGED TABLE twin_tile_cluster (
    layer_id bigint NOT NULL,
    version bigint NOT NULL,
    z smallint NOT NULL,
    gx integer NOT NULL,
    gy integer NOT NULL,
    n bigint NOT NULL,
    mx float8 NOT NULL,  -- mean position, EPSG:3857 metres (plain numbers: no geometry to decode per row)
    my float8 NOT NULL
);
CREATE INDEX twin_tile_cluster_cell ON twin_tile_cluster (layer_id, z, gx, gy);
CREATE UNLOGGED TABLE twin_tile_dense (
    layer_id bigint NOT NULL,
    version bigint NOT NULL,
    z smallint NOT NULL,
    x integer NOT NULL,
    y integer NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (layer_id, z, x, y)
);
"""

REVERSE_SQL = """
DROP TABLE IF EXISTS twin_tile_dense;
DROP TABLE IF EXISTS twin_tile_cluster;
DROP TABLE IF EXISTS twin_tile_overview;
DROP TABLE IF EXISTS twin_layer_data_version;
DROP SEQUENCE IF EXISTS twin_layer_data_version_seq;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("twin", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(FORWARD_SQL, REVERSE_SQL),
    ]
