# SPDX-License-Identifier: AGPL-3.0-or-later
"""Live ingestion: devices publish over MQTT; readings are stored, rules raise geo-events."""
