# SPDX-License-Identifier: AGPL-3.0-or-later
"""The observations of one layer's features (sensor readings, boat positions, camera counts).

Collection id ``{slug}.observations``. Each observation is a feature: its id
is the observation id, its geometry the observed position (boats) or else
the feature's location (fixed sensors), its properties the observed values
plus ``feature`` (the feature's external id) and ``time``. ``datetime``
filters on ``time``.

The table is range-partitioned by month with a BRIN on ``time`` and a
btree on ``(feature_id, time)``: filter by ``feature`` and ``datetime`` to
stay fast on hundreds of millions of rows; a bbox alone scans positions
(they carry no spatial index by design) and may hit the statement timeout.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from layers.providers.base import Extent
from layers.providers.postgis import TableProvider, run_sql
from layers.query import Queryable, SqlFragment

OBSERVATION_QUERYABLES = (
    Queryable("geometry", "geometry", "coalesce(o.position, ft.geom)", title="Vị trí / Position",
              sortable=False, output="f.geom"),
    Queryable("feature", "string", "ft.external_id", title="Đối tượng / Feature id", output="f.feature"),
    Queryable("time", "string", "o.time", format="date-time", title="Thời điểm / Time", output="f.time"),
)


class ObservationProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["observations"] = Field(default="observations", description="Provider type")
    layer_id: int = Field(description="Primary key of the layer whose features are observed")
    kind: str = Field(description="Feature kind of the layer")


class ObservationProvider(TableProvider):
    type = "observations"
    config_model = ObservationProviderConfig
    from_sql = "twin_observation o JOIN twin_feature ft ON ft.id = o.feature_id"
    inner_columns = ("o.id, o.time, o.values, coalesce(o.position, ft.geom) AS geom, "
                     "ft.external_id AS feature")
    id_sql = "f.id"
    key_sql = ("o.time", "o.id")
    row_key = ("o.id", "o.time")  # the partition key too, so the join prunes partitions
    geom_sql = "coalesce(o.position, ft.geom)"

    def __init__(self, config: ObservationProviderConfig) -> None:
        super().__init__(SqlFragment("ft.layer_id = %s", (config.layer_id,)),
                         {q.name: q for q in OBSERVATION_QUERYABLES}, "time")
        self.config = config

    def all_properties_sql(self) -> str:
        return "(f.values || jsonb_build_object('feature', f.feature, 'time', f.time))"

    def extent(self) -> Extent:
        """The observed features' extent; no temporal extent.

        Scanning hundreds of millions of observations for their bounds is not
        worth a collection listing (the extent is optional, §7.14); moving
        positions may lie outside the features' last known places.
        """
        sql = ("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
               "(SELECT ST_Extent(ft.geom) AS e FROM twin_feature ft WHERE ft.layer_id = %s) s")
        x1, y1, x2, y2 = run_sql(sql, [self.config.layer_id])[0]
        return Extent((x1, y1, x2, y2) if x1 is not None else None)

    def fid_where(self, fid: str) -> SqlFragment | None:
        return SqlFragment("o.id = %s", (int(fid),)) if fid.isascii() and fid.isdigit() and len(fid) < 19 else None
