# SPDX-License-Identifier: AGPL-3.0-or-later
"""The geo-event stream (detections and alerts) as one collection, ``geo-events``.

Readable only with the ``read_events`` capability (the registry's
``CollectionSpec``). Payload keys that could identify a citizen reporter
are dropped in SQL, as in :mod:`twin.api`, so they never leave the database.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from layers.providers.postgis import TableProvider
from layers.query import Queryable, SqlFragment
from twin.models import EventStatus

EVENT_QUERYABLES = (
    Queryable("geometry", "geometry", "e.geom", title="Vị trí / Location", sortable=False),
    Queryable("kind", "string", "e.kind", title="Loại / Kind", output="f.kind"),
    Queryable("category", "string", "e.category", title="Lĩnh vực / Category", output="f.category"),
    Queryable("severity", "integer", "e.severity", title="Mức độ / Severity (1-5)", output="f.severity"),
    Queryable("title", "string", "e.title", title="Tiêu đề / Title", output="f.title"),
    Queryable("status", "string", "e.status", title="Trạng thái / Status", enum=tuple(EventStatus.values),
              output="f.status"),
    Queryable("occurred_at", "string", "e.occurred_at", format="date-time", title="Thời điểm / Occurred at",
              output="f.occurred_at"),
    Queryable("layer", "string", "el.slug", title="Lớp nguồn / Source layer", output="f.layer"),
    Queryable("ward", "string", "ew.code", title="Phường, xã / Ward code", output="f.ward"),
    Queryable("agency", "string", "ea.code", title="Cơ quan phụ trách / Agency code", output="f.agency"),
)
# Same rule as twin.api.REDACTED_PAYLOAD_PREFIXES, applied before the payload leaves PostgreSQL.
_REDACTED = ("reporter", "citizen_", "phone", "email")
_PAYLOAD_SQL = ("(SELECT coalesce(jsonb_object_agg(p.k, p.v), '{}'::jsonb) FROM jsonb_each(f.payload) AS p(k, v) "
                "WHERE NOT (" + " OR ".join(f"starts_with(lower(p.k), '{prefix}')" for prefix in _REDACTED) + "))")


class EventProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["events"] = Field(default="events", description="Provider type")


class EventProvider(TableProvider):
    type = "events"
    config_model = EventProviderConfig
    from_sql = ("twin_geoevent e LEFT JOIN twin_layer el ON el.id = e.layer_id "
                "LEFT JOIN twin_adminarea ew ON ew.id = e.ward_id LEFT JOIN twin_agency ea ON ea.id = e.agency_id")
    inner_columns = ("e.id, e.kind, e.category, e.severity, e.title, e.geom, e.status, e.occurred_at, e.payload, "
                     "el.slug AS layer, ew.code AS ward, ea.code AS agency")
    id_sql = "f.id"
    key_sql = ("e.id",)
    row_key = ("e.id",)
    geom_sql = "e.geom"

    def __init__(self, config: EventProviderConfig) -> None:
        super().__init__(SqlFragment("TRUE"), {q.name: q for q in EVENT_QUERYABLES}, "occurred_at")
        self.config = config

    def all_properties_sql(self) -> str:
        pairs = ", ".join(f"'{q.name}', {q.output_sql}" for q in EVENT_QUERYABLES if not q.is_geometry)
        return f"jsonb_build_object({pairs}, 'payload', {_PAYLOAD_SQL})"

    def fid_where(self, fid: str) -> SqlFragment | None:
        return SqlFragment("e.id = %s", (int(fid),)) if fid.isascii() and fid.isdigit() and len(fid) < 19 else None
