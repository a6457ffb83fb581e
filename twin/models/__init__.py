# SPDX-License-Identifier: AGPL-3.0-or-later
"""The spatial core's models, one module per concern."""
from twin.models.access import ApiToken, DeviceCredential
from twin.models.admin_areas import AdminArea, AdminAreaPiece, Agency, AdminLevel
from twin.models.events import EventSeverity, EventStatus, GeoEvent, GeoEventTransition
from twin.models.features import City, DeviceLiveness, Feature, FeatureStatus, GeometryType, Layer, last_seen_sql
from twin.models.observations import Observation

__all__ = [
    "AdminArea", "AdminAreaPiece", "AdminLevel", "Agency", "ApiToken", "City", "DeviceCredential", "DeviceLiveness",
    "EventSeverity", "EventStatus", "Feature", "FeatureStatus", "GeoEvent",
    "GeoEventTransition", "GeometryType", "Layer", "Observation", "last_seen_sql",
]
