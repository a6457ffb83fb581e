# SPDX-License-Identifier: AGPL-3.0-or-later
"""Geofence: moving features entering and leaving the polygons of a layer.

For readings that carry a position (boats' AIS or GPS fixes), one spatial
query per batch finds which zone polygons cover each position. Whether a
feature is inside a zone is remembered per feature × zone in ``RuleState``
(subject ``<feature id>:<zone feature id>``), so a restart does not forget
who is where.

Events: entering opens an event (one per stay); it is updated while the
feature stays inside and *resolved when it leaves*: the event is the stay,
with ``entered_at`` and ``left_at`` in its payload, rather than a separate
"leave" event. ``exit_grace_s`` absorbs GPS jitter along the edge: a
position outside counts as leaving only once the feature has stayed
outside that long (the stay then ends at the first position outside).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import CharField, F, Func, Value
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ingestion.messages import Reading
from ingestion.models import RuleState
from ingestion.rules.base import Rule, RuleConfig
from ingestion.rules.context import BatchContext, Device
from ingestion.rules.episodes import Alert, close, iso, lock_states, open_or_update, parse_iso, save_states
from twin.models import Layer

logger = logging.getLogger(__name__)


class ZoneLayer(BaseModel):
    """A layer whose polygons are zones, and what entering one means."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    layer: str = Field(min_length=1, description="Slug of the polygon layer (e.g. hue-imperial-city).")
    kinds: tuple[str, ...] = Field(default=("boat",), min_length=1, description="Kinds of moving features watched.")
    category: str = Field(default="security", min_length=1, description="Event category (routing).")
    severity: int = Field(default=3, ge=1, le=5, description="Event severity.")
    exit_grace_s: float = Field(default=0, ge=0, le=3600, description="Seconds outside before a stay ends.")
    title_vi: str = Field(default="Đi vào vùng giám sát", description="Vietnamese title.")
    title_en: str = Field(default="Entered a watched zone", description="English title.")


class GeofenceConfig(RuleConfig):
    zones: tuple[ZoneLayer, ...] = Field(default=(), description="Zone layers to watch.")

    @model_validator(mode="after")
    def _one_entry_per_layer(self) -> GeofenceConfig:
        layers = [z.layer for z in self.zones]
        if len(set(layers)) != len(layers):
            raise ValueError("each zone layer may be listed once")
        return self


# One query per batch: every position against every zone polygon (GiST on geom).
_HITS_SQL = """
SELECT p.i, z.id, l.slug, COALESCE(NULLIF(z.name, ''), z.external_id)
  FROM unnest(%(lons)s::float8[], %(lats)s::float8[]) WITH ORDINALITY AS p(lon, lat, i)
  JOIN twin_feature z ON z.layer_id = ANY(%(layers)s)
                     AND ST_Covers(z.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
  JOIN twin_layer l ON l.id = z.layer_id
"""


# Advisory locks in id order (the sub-select fixes the order), so workers never deadlock.
_FEATURE_LOCK_SQL = """
SELECT pg_advisory_xact_lock(hashtextextended(%s || s.id::text, 0))
  FROM (SELECT id FROM unnest(%s::bigint[]) AS id ORDER BY id) AS s
"""


class GeofenceRule(Rule):
    name = "geofence"
    config_model = GeofenceConfig
    wants_by_shape = True       # wants() reads kind, stream, value names, position only
    cfg: GeofenceConfig

    def wants(self, reading: Reading) -> bool:
        return (reading.lon is not None and reading.lat is not None
                and any(reading.kind in z.kinds for z in self.cfg.zones))

    def evaluate(self, readings: Sequence[Reading], ctx: BatchContext) -> None:
        moving = sorted(readings, key=lambda r: (r.feature_id, r.time))
        hits = self._hits(moving)
        pairs: dict[int, set[str]] = defaultdict(set)
        for i, reading in enumerate(moving):
            pairs[reading.feature_id] |= {f"{reading.feature_id}:{zone_id}" for zone_id in hits.get(i, {})}
        self._lock_features(sorted(pairs))
        for subject in self._inside_before(set(pairs)):
            pairs[int(subject.split(":", 1)[0])].add(subject)
        states = lock_states(self.name, (s for subjects in pairs.values() for s in subjects))
        zone_info = {zid: info for found in hits.values() for zid, info in found.items()}
        for i, reading in enumerate(moving):
            device = ctx.device(reading.feature_id)
            if device is None:
                continue
            for subject in sorted(pairs[reading.feature_id]):
                zone_id = int(subject.split(":", 1)[1])
                self._step(states[subject], device, reading, zone_id in hits.get(i, {}), zone_info.get(zone_id))
        for subject, row in states.items():
            if row.event_id is not None and row.state.get("dirty"):
                self._update(row, ctx.device(int(subject.split(":", 1)[0])))
        save_states(states.values())

    def _hits(self, moving: list[Reading]) -> dict[int, dict[int, tuple[str, str]]]:
        """Reading position (index in ``moving``) → {zone id: (layer slug, zone name)}."""
        by_slug = {z.layer: z for z in self.cfg.zones}
        layer_ids = list(Layer.objects.filter(slug__in=by_slug).values_list("id", flat=True))
        if not moving or not layer_ids:
            return {}
        with connection.cursor() as cursor:
            cursor.execute(_HITS_SQL, {"lons": [float(r.lon) for r in moving], "lats": [float(r.lat) for r in moving],
                                       "layers": layer_ids})
            rows = cursor.fetchall()
        hits: dict[int, dict[int, tuple[str, str]]] = defaultdict(dict)
        for i, zone_id, slug, name in rows:
            if moving[i - 1].kind in by_slug[slug].kinds:   # ORDINALITY counts from 1
                hits[i - 1][zone_id] = (slug, name)
        return hits

    def _lock_features(self, feature_ids: list[int]) -> None:
        """Serialise the batches of one moving feature across workers (transaction-scoped).

        Which zones a feature was inside is read before its pair rows can be
        locked; without this lock a concurrent worker could miss a zone the
        other is entering right now.
        """
        if feature_ids:
            with connection.cursor() as cursor:
                cursor.execute(_FEATURE_LOCK_SQL, [f"{self.name}:", feature_ids])

    def _inside_before(self, feature_ids: set[int]) -> list[str]:
        """Subjects of the zones these features were inside at the end of the last batch."""
        if not feature_ids:
            return []
        part = Func(F("subject"), Value(":"), Value(1), function="split_part", output_field=CharField())
        return list(RuleState.objects.annotate(fid=part)
                    .filter(rule=self.name, fid__in=[str(f) for f in feature_ids], state__inside=True)
                    .values_list("subject", flat=True))

    def _step(self, row, device: Device, reading: Reading, inside: bool, info: tuple[str, str] | None) -> None:
        st = row.state
        if st.get("last_time") and iso(reading.time) <= st["last_time"]:
            return   # older than what this pair already judged
        st["last_time"] = iso(reading.time)
        if inside:
            st.update(outside_since=None, position=[reading.lon, reading.lat], dirty=True)
            if not st.get("inside"):
                layer, zone_name = info or (st.get("layer", ""), st.get("zone_name", ""))
                st.update(inside=True, entered_at=iso(reading.time), layer=layer, zone_name=zone_name, left_at=None,
                          zone_id=int(row.subject.split(":", 1)[1]))
                open_or_update(self, row, self._alert(device, st), reading.time)
                st["dirty"] = False
            return
        if not st.get("inside"):
            return
        st["outside_since"] = st.get("outside_since") or iso(reading.time)
        zone = self._zone(st.get("layer"))
        grace = zone.exit_grace_s if zone else 0
        if (reading.time - parse_iso(st["outside_since"])).total_seconds() >= grace:
            st.update(inside=False, left_at=st["outside_since"], dirty=False)
            close(self, row, self._alert(device, st), parse_iso(st["left_at"]),
                  note="Đã rời vùng / left the zone")

    def _update(self, row, device: Device | None) -> None:
        row.state["dirty"] = False
        if device is not None and row.state.get("inside"):
            open_or_update(self, row, self._alert(device, row.state), parse_iso(row.state["entered_at"]))

    def _zone(self, slug: str | None) -> ZoneLayer | None:
        return next((z for z in self.cfg.zones if z.layer == slug), None)

    def _alert(self, device: Device, st: dict) -> Alert:
        zone = self._zone(st.get("layer")) or ZoneLayer(layer=st.get("layer") or "?")
        lon, lat = st["position"] if st.get("position") else (None, None)
        geom = Point(lon, lat, srid=4326) if lon is not None else device.position()
        label, zone_name = device.label, st.get("zone_name", "")
        return Alert(category=zone.category, severity=zone.severity, geom=geom, feature_id=device.id,
                     title=f"{zone.title_vi}: {label} → {zone_name} / {zone.title_en}: {label} → {zone_name}",
                     payload={"device": device.external_id, "zone_layer": st.get("layer"), "zone": zone_name,
                              "zone_id": st.get("zone_id"),
                              "entered_at": st.get("entered_at"), "left_at": st.get("left_at"),
                              "position": st.get("position")})
