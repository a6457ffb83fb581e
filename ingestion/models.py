# SPDX-License-Identifier: AGPL-3.0-or-later
"""Ingestion state kept in PostGIS: dead letters and rule state."""
from __future__ import annotations

from django.db import models


class DeadLetter(models.Model):
    """A rejected message, kept with its raw bytes so it can be fixed and replayed."""

    topic = models.CharField(max_length=500)
    payload = models.BinaryField(help_text="Raw bytes as received (up to the size limit).")
    payload_size = models.PositiveIntegerField(help_text="Size of the original payload in bytes.")
    reason = models.CharField(max_length=80, help_text="Machine-readable reason: malformed_json, unknown_device ...")
    detail = models.TextField(blank=True, help_text="Human-readable explanation.")
    received_at = models.DateTimeField()
    replayed_at = models.DateTimeField(null=True, blank=True)
    replay_result = models.CharField(max_length=200, blank=True)
    fingerprint = models.CharField(
        max_length=64, null=True, blank=True, unique=True,
        help_text="SHA-256 of topic, bytes and size: a redelivered message is stored once.",
    )

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["reason", "-received_at"], name="deadletter_reason_time")]

    def __str__(self) -> str:
        return f"{self.reason} on {self.topic}"


class RuleState(models.Model):
    """What a rule remembers about one subject (a feature, a feature × zone ...).

    Kept in the database so hysteresis, durations and open events survive a
    restart of the ingestion workers.
    """

    rule = models.CharField(max_length=80)
    subject = models.CharField(max_length=200, help_text="e.g. feature id, or feature:zone")
    state = models.JSONField(default=dict)
    event = models.ForeignKey("twin.GeoEvent", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="The open event while the condition lasts.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "subject"], name="rulestate_rule_subject_unique")]

    def __str__(self) -> str:
        return f"{self.rule}:{self.subject}"


class BrokerLogin(models.Model):
    """The MQTT broker's copy of a device credential's secret, hashed the broker's way.

    Mosquitto checks passwords itself (PBKDF2-SHA512, its ``$7$`` format),
    and the Django hash of ``DeviceCredential`` cannot be converted, so the
    secret is hashed a second time when the login is issued. ``twin
    mqtt-passwords`` writes these into the broker's password file.
    """

    credential = models.OneToOneField("twin.DeviceCredential", on_delete=models.CASCADE, related_name="broker_login")
    password_hash = models.CharField(max_length=200, help_text="Mosquitto $7$ PBKDF2-SHA512 hash of the secret.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"broker login of {self.credential_id}"

