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
