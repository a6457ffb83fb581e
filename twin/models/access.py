# SPDX-License-Identifier: AGPL-3.0-or-later
"""Credentials for API clients (per user) and for devices (per device).

Only hashes are stored. Tokens are looked up by a short public prefix and
then compared in constant time, so a database leak does not leak tokens.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What this token is for (QGIS, notebook, ...).")
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.user} / {self.name} ({self.prefix}…)"


class DeviceCredential(models.Model):
    """A device's own login (MQTT / HTTP ingestion), separate from any user."""

    feature = models.ForeignKey("twin.Feature", on_delete=models.CASCADE, related_name="credentials")
    client_id = models.CharField(max_length=100, unique=True)
    secret_hash = models.CharField(max_length=256)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.client_id
