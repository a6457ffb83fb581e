# SPDX-License-Identifier: AGPL-3.0-or-later
"""Payload schemas, one per stream, named after the NGSI-LD Smart Data Models.

Devices send the *key-values* form of a Smart Data Model entity (plain JSON,
no ``{"type": "Property", "value": ...}`` wrappers) — or a JSON list of them
when a gateway or a buffering logger sends many readings at once. Only the
attributes a city operations centre uses are accepted; any other key is
refused (``extra="forbid"``) so a typo never becomes a silently lost value.

Numbers are strict: ``"12"`` is not a number, ``true`` is not a number, and
NaN/Infinity are refused (JSON has neither; the parser refuses them before
pydantic, ``allow_inf_nan=False`` catches ``1e999``).

>>> AirQualityObserved.model_validate({"dateObserved": "2026-11-24T05:00:00Z", "pm25": 12}).values()
{'pm25': 12.0}
"""
from __future__ import annotations

from datetime import datetime, timezone
from itertools import repeat
from operator import contains
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from pydantic_core import SchemaValidator, core_schema

_DEFAULTS: dict[type, dict[str, Any]] = {}   # per schema: attributes with a default, for values_of()


class GeoPoint(BaseModel):
    """A GeoJSON Point (the NGSI-LD ``location`` GeoProperty), lon/lat in EPSG:4326."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=3,
                                     description="[longitude, latitude(, altitude)] in degrees (EPSG:4326)")

    @property
    def lon(self) -> float:
        return self.coordinates[0]

    @property
    def lat(self) -> float:
        return self.coordinates[1]

    @model_validator(mode="after")
    def _in_range(self) -> GeoPoint:
        lon, lat = self.coordinates[:2]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError("coordinates must be [longitude, latitude] within ±180 and ±90")
        return self


class StreamPayload(BaseModel):
    """Base of every stream schema.

    ``time_field`` names the Smart Data Model attribute holding the
    observation time; it becomes ``Reading.time`` and must carry a zone.
    ``entity_type`` is the Smart Data Model name accepted in ``type``.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    time_field: ClassVar[str] = "dateObserved"
    entity_type: ClassVar[str] = ""
    meta_fields: ClassVar[frozenset[str]] = frozenset({"id", "type", "location"})

    id: str | None = Field(default=None, max_length=256, description="NGSI-LD entity id (optional, not stored)")
    location: GeoPoint | None = Field(default=None, description="Where the reading was taken (moving devices)")

    def observed_at(self) -> datetime:
        """The observation time, in UTC."""
        return getattr(self, self.time_field).astimezone(timezone.utc)

    def values(self) -> dict[str, Any]:
        """What is stored in ``Observation.values``: the measured attributes, JSON-ready."""
        return self.model_dump(mode="json", exclude_none=True, exclude=self.meta_fields | {self.time_field})

    @classmethod
    def values_of(cls, validated_input: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`values` for many readings, taken from their JSON input once it has validated.

        Strict validation changes nothing it accepts (an integer stays the
        same number), so the input's own attributes are the values; only the
        schema's defaults are added. Four times cheaper than re-serialising
        the models, which matters at tens of thousands of readings a second.

        >>> Alert.values_of([{"dateIssued": "2026-11-24T05:00:00Z", "category": "fire", "description": None}])
        [{'severity': 'high', 'alarm': True, 'category': 'fire'}]
        """
        skip = cls.meta_fields | {cls.time_field}
        defaults = cls._value_defaults()
        return [{**defaults, **{k: v for k, v in item.items() if v is not None and k not in skip}}
                for item in validated_input]

    @classmethod
    def take_values(cls, validated_input: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`values_of`, made from the input dicts themselves: they lose their time and meta attributes.

        Why: building a new dict per reading was 7 % of a worker's time on
        gateways' batched payloads. The dicts a message's JSON decodes to
        belong to the parser alone, so they become the values (same keys,
        same order, same objects as :meth:`values_of` gives); the loops run
        once per attribute in C, not once per reading in Python.

        >>> items = [{"dateIssued": "2026-11-24T05:00:00Z", "category": "fire", "description": None}]
        >>> Alert.take_values(items) == Alert.values_of([{"dateIssued": "2026-11-24T05:00:00Z", "category": "fire"}])
        True
        """
        for key in cls._skipped():
            list(map(dict.pop, validated_input, repeat(key), repeat(None)))
        if any(map(contains, map(dict.values, validated_input), repeat(None))):
            validated_input = [{k: v for k, v in item.items() if v is not None} for item in validated_input]
        defaults = cls._value_defaults()
        if defaults:
            return [{**defaults, **item} for item in validated_input]
        return validated_input

    @classmethod
    def _skipped(cls) -> tuple[str, ...]:
        """The input attributes that are not values (meta attributes and the time), in a stable order."""
        return tuple(sorted(cls.meta_fields | {cls.time_field}))

    @classmethod
    def _value_defaults(cls) -> dict[str, Any]:
        cached = _DEFAULTS.get(cls)
        if cached is None:
            skip = cls.meta_fields | {cls.time_field}
            cached = _DEFAULTS[cls] = {name: info.default for name, info in cls.model_fields.items()
                                       if name not in skip and info.default is not None and not info.is_required()}
        return cached


def _time(description: str):
    # Timestamps are ISO 8601 strings in JSON; strict mode would refuse the
    # string form, so the time field alone is lax (AwareDatetime still
    # refuses a time without a zone).
    return Field(strict=False, description=description)


class AirQualityObserved(StreamPayload):
    """Smart Data Model ``AirQualityObserved`` (dataModel.Environment); µg/m³ unless noted."""

    entity_type: ClassVar[str] = "AirQualityObserved"
    type: Literal["AirQualityObserved"] | None = None
    dateObserved: AwareDatetime = _time("Observation time, ISO 8601 with zone")
    pm25: float | None = Field(default=None, ge=0, le=5000, description="PM2.5, µg/m³")
    pm10: float | None = Field(default=None, ge=0, le=5000, description="PM10, µg/m³")
    pm1: float | None = Field(default=None, ge=0, le=5000, description="PM1, µg/m³")
    no2: float | None = Field(default=None, ge=0, le=10000, description="NO₂, µg/m³")
    o3: float | None = Field(default=None, ge=0, le=10000, description="O₃, µg/m³")
    co: float | None = Field(default=None, ge=0, le=100000, description="CO, µg/m³")
    so2: float | None = Field(default=None, ge=0, le=10000, description="SO₂, µg/m³")
    co2: float | None = Field(default=None, ge=0, le=100000, description="CO₂, ppm")
    temperature: float | None = Field(default=None, ge=-60, le=70, description="Air temperature, °C")
    relativeHumidity: float | None = Field(default=None, ge=0, le=1, description="Relative humidity, 0..1")
    airQualityIndex: float | None = Field(default=None, ge=0, le=1000, description="AQI computed by the device")


class WaterQualityObserved(StreamPayload):
    """Smart Data Model ``WaterQualityObserved`` (dataModel.WaterQuality)."""

    entity_type: ClassVar[str] = "WaterQualityObserved"
    type: Literal["WaterQualityObserved"] | None = None
    dateObserved: AwareDatetime = _time("Observation time, ISO 8601 with zone")
    temperature: float | None = Field(default=None, ge=-5, le=60, description="Water temperature, °C")
    pH: float | None = Field(default=None, ge=0, le=14)
    conductivity: float | None = Field(default=None, ge=0, description="Electrical conductivity, S/m")
    conductance: float | None = Field(default=None, ge=0, description="Specific conductance, S/m")
    tss: float | None = Field(default=None, ge=0, description="Total suspended solids, mg/L")
    tds: float | None = Field(default=None, ge=0, description="Total dissolved solids, mg/L")
    turbidity: float | None = Field(default=None, ge=0, description="Turbidity, FNU")
    salinity: float | None = Field(default=None, ge=0, description="Salinity, ppt")
    O2: float | None = Field(default=None, ge=0, description="Dissolved oxygen, mg/L")
    NO3: float | None = Field(default=None, ge=0, description="Nitrate, mg/L")
    NH4: float | None = Field(default=None, ge=0, description="Ammonium, mg/L")
    PO4: float | None = Field(default=None, ge=0, description="Phosphate, mg/L")


class FloodMonitoring(StreamPayload):
    """Smart Data Model ``FloodMonitoring`` (dataModel.Environment): water level, metres."""

    time_field: ClassVar[str] = "observationDateTime"
    entity_type: ClassVar[str] = "FloodMonitoring"
    type: Literal["FloodMonitoring"] | None = None
    observationDateTime: AwareDatetime = _time("Observation time, ISO 8601 with zone")
    currentLevel: float = Field(ge=-100, le=100, description="Water level above the reference, m")
    measuredDistance: float | None = Field(default=None, ge=0, description="Sensor tip to water surface, m")
    referenceLevel: float | None = Field(default=None, description="River bed to sensor tip, m")
    floodLevelStatus: str | None = Field(default=None, max_length=40, description="Device's own status text")


class Device(StreamPayload):
    """Smart Data Model ``Device`` (dataModel.Device): health of the device itself.

    ``deviceState`` sets the feature's status; ``retired`` is an operator
    decision and never comes from a device.
    """

    time_field: ClassVar[str] = "dateLastValueReported"
    entity_type: ClassVar[str] = "Device"
    type: Literal["Device"] | None = None
    dateLastValueReported: AwareDatetime = _time("Time of this status report, ISO 8601 with zone")
    # "degraded": still reporting but not fully working (a camera whose stream stalls, docs/cameras.md).
    deviceState: Literal["active", "inactive", "maintenance", "degraded"] | None = None
    batteryLevel: float | None = Field(default=None, ge=0, le=1, description="Battery, 0..1")
    rssi: float | None = Field(default=None, ge=-200, le=0, description="Received signal strength, dBm")
    firmwareVersion: str | None = Field(default=None, max_length=60)


class Alert(StreamPayload):
    """Smart Data Model ``Alert`` (dataModel.Alert): fire alarms, smoke, camera detections.

    One CityTwin extension: ``alarm`` (default true) says whether the alarm
    is on; a panel reports its reset as ``"alarm": false`` (optionally with
    ``validTo``), which is what the fire rule ends its event on.
    """

    time_field: ClassVar[str] = "dateIssued"
    entity_type: ClassVar[str] = "Alert"
    type: Literal["Alert"] | None = None
    dateIssued: AwareDatetime = _time("When the alert was raised, ISO 8601 with zone")
    category: str = Field(min_length=1, max_length=60, description="fire, smoke, flood, security ...")
    subCategory: str | None = Field(default=None, max_length=60)
    severity: Literal["informational", "low", "medium", "high", "critical"] = "high"
    description: str | None = Field(default=None, max_length=2000)
    validFrom: AwareDatetime | None = Field(default=None, strict=False)
    validTo: AwareDatetime | None = Field(default=None, strict=False, description="When the alert ended")
    alarm: bool = Field(default=True, description="CityTwin extension: false when the alarm resets")


class VehiclePosition(StreamPayload):
    """Position of a moving feature (boats): a subset of Smart Data Model ``Vehicle``."""

    time_field: ClassVar[str] = "observationDateTime"
    entity_type: ClassVar[str] = "Vehicle"
    type: Literal["Vehicle"] | None = None
    observationDateTime: AwareDatetime = _time("Fix time, ISO 8601 with zone")
    location: GeoPoint = Field(description="GeoJSON Point, required for a position")
    speed: float | None = Field(default=None, ge=0, le=200, description="Speed over ground, km/h")
    heading: float | None = Field(default=None, ge=0, lt=360, description="Course over ground, degrees from north")



class CameraObject(BaseModel):
    """One tracked object or one camera alert, as in a Frigate ``events`` message's ``before``/``after``.

    ``category`` is empty for a plain detection; an alert (``congestion``,
    ``no_stopping``, ``wrong_way``, ``plate_watchlist``, ``camera_stream``)
    names its category and severity. Pixel boxes are ``[x, y, w, h]``.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    id: str = Field(min_length=1, max_length=120, description="Track or episode id, unique per camera")
    label: str = Field(min_length=1, max_length=40, description="vehicle, person, congestion ...")
    category: str | None = Field(default=None, max_length=60, description="Alert category; none for a detection")
    severity: int | None = Field(default=None, ge=1, le=5)
    score: float | None = Field(default=None, ge=0, le=1)
    box: list[float] | None = Field(default=None, min_length=4, max_length=4, description="[x, y, w, h], pixels")
    ground: GeoPoint | None = Field(default=None, description="Where it is on the ground (homography)")
    start_time: AwareDatetime = Field(strict=False)
    end_time: AwareDatetime | None = Field(default=None, strict=False)
    speed_kmh: float | None = Field(default=None, ge=0, le=400)
    zone: str | None = Field(default=None, max_length=60)
    plate: str | None = Field(default=None, max_length=20)
    snapshot: str | None = Field(default=None, max_length=500, description="URL/path of the blurred JPEG")
    detail: dict[str, Any] | None = Field(default=None, description="Rule facts (levels, durations ...)")


class CameraDetection(StreamPayload):
    """A detection lifecycle message in the spirit of Frigate's ``frigate/events``.

    ``type`` is the lifecycle (``new``, ``update``, ``end``), not an entity
    type, so it is stored with the values.
    """

    meta_fields: ClassVar[frozenset[str]] = frozenset({"id", "location"})
    entity_type: ClassVar[str] = "CameraDetection"
    type: Literal["new", "update", "end"]
    dateObserved: AwareDatetime = _time("Time of this message, ISO 8601 with zone")
    before: CameraObject | None = None
    after: CameraObject


class CameraCounts(StreamPayload):
    """Periodic counts of a camera: line totals, lanes, congestion level, stream health."""

    entity_type: ClassVar[str] = "CameraCounts"
    type: Literal["CameraCounts"] | None = None
    dateObserved: AwareDatetime = _time("End of the counting interval, ISO 8601 with zone")
    lines: dict[str, dict[str, int]] = Field(default_factory=dict, description="line → direction → total")
    lanes: dict[str, dict[str, float | int | None]] = Field(default_factory=dict,
                                                            description="lane → occupancy, flow_vph, speed_kmh")
    congestionLevel: int | None = Field(default=None, ge=0, le=3)
    streamState: Literal["online", "degraded", "offline", "ended"] | None = None
    framesDecoded: int | None = Field(default=None, ge=0)
    framesAnalysed: int | None = Field(default=None, ge=0)
    corruptFrames: int | None = Field(default=None, ge=0)
    reconnects: int | None = Field(default=None, ge=0)


_LIST_ADAPTERS: dict[type[StreamPayload], TypeAdapter] = {}
_PLAIN_VALIDATORS: dict[type[StreamPayload], SchemaValidator | None] = {}


def list_adapter(schema: type[StreamPayload]) -> TypeAdapter:
    """A cached validator for a list of ``schema`` (one call into pydantic-core per message)."""
    adapter = _LIST_ADAPTERS.get(schema)
    if adapter is None:
        adapter = _LIST_ADAPTERS[schema] = TypeAdapter(list[schema])
    return adapter


def plain_validator(schema: type[StreamPayload]) -> SchemaValidator | None:
    """A validator for a list of ``schema`` that gives plain dicts, not models; ``None`` if it cannot be built.

    Why: building a model per reading was the largest single cost of a
    worker on batched payloads (12 % in py-spy), and nothing downstream
    needs the models, only the time and the position. This validator is
    made from the model's own core schema, field by field, with the model's
    configuration (strict, no NaN, no extra keys), so it accepts exactly
    what the model accepts; only the output differs: each reading is a dict
    of the attributes it holds (no defaults filled in; nested models such as
    ``location`` stay models). A schema with anything this translation does
    not know (a validator on the model itself, shared definitions) gets
    ``None`` and keeps the model path.
    """
    if schema not in _PLAIN_VALIDATORS:
        fields = _plain_fields(schema.__pydantic_core_schema__)
        config = schema.__pydantic_core_schema__.get("config")    # a typed dict reads its own, not the validator's
        _PLAIN_VALIDATORS[schema] = None if fields is None else SchemaValidator(
            core_schema.list_schema(core_schema.typed_dict_schema(fields, config=config)), config=config)
    return _PLAIN_VALIDATORS[schema]


def _plain_fields(model: dict[str, Any]) -> dict[str, Any] | None:
    """The model's fields as typed-dict fields (defaults dropped: an absent attribute stays absent)."""
    inner = model.get("schema", {})
    if (model.get("type") != "model" or set(model) - {"type", "cls", "config", "custom_init", "metadata", "ref",
                                                        "root_model", "schema"}
            or model.get("custom_init") or model.get("root_model") or inner.get("type") != "model-fields"
            or set(inner) - {"type", "fields", "model_name", "computed_fields"}):
        return None
    fields = {}
    for name, field in inner["fields"].items():
        value = field["schema"]
        if set(field) - {"type", "schema", "metadata"}:
            return None                     # aliases, exclusions ...: not translated
        if value["type"] == "default":
            if set(value) - {"type", "schema", "default", "default_factory", "default_factory_takes_data"}:
                return None                 # validate_default, on_error ...: not translated
            fields[name] = core_schema.typed_dict_field(value["schema"], required=False)
        else:
            fields[name] = core_schema.typed_dict_field(value, required=True)
    return fields


__all__ = ["AirQualityObserved", "Alert", "CameraCounts", "CameraDetection", "CameraObject", "Device", "FloodMonitoring", "GeoPoint", "StreamPayload",
           "VehiclePosition", "WaterQualityObserved", "list_adapter", "plain_validator"]
