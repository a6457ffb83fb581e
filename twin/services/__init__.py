# SPDX-License-Identifier: AGPL-3.0-or-later
"""Domain writes. Views, commands and adapters call these; they never write models.

Each function runs in one transaction: a failure writes nothing.
"""
from twin.services.access import (authenticate_device, authenticate_token, create_api_token,
                                  create_device_credential)
from twin.services.areas import PointResolution, agencies_for, area_containing, make_point, resolve_point
from twin.services.devices import mark_devices_seen
from twin.services.events import EventDraft, RoutedTo, raise_event, transition_event
from twin.services.features import FeatureRow, WriteReport, new_features_statement, write_features
from twin.services.layers import LayerSpec, ensure_layer
from twin.services.observations import ObservationRow, ensure_partitions, record_observations

__all__ = [
    "EventDraft", "FeatureRow", "LayerSpec", "ObservationRow", "PointResolution", "RoutedTo", "WriteReport",
    "agencies_for", "area_containing", "authenticate_device", "authenticate_token", "create_api_token",
    "create_device_credential", "ensure_layer", "ensure_partitions", "make_point",
    "mark_devices_seen", "new_features_statement", "raise_event", "record_observations", "resolve_point", "transition_event", "write_features",
]
