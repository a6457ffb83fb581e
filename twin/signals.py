# SPDX-License-Identifier: AGPL-3.0-or-later
"""Signals the spatial core sends, so other apps can react without the core importing them.

``layer_data_changed(layer_id=…)`` is sent when a layer's data version is
bumped (twin.services.features.bump_data_version): once at once, so this
process stops reusing what it knew about the layer, and once more when the
write commits. Receivers must be cheap and must not write.
"""
from django.dispatch import Signal

layer_data_changed = Signal()
