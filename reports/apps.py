# SPDX-License-Identifier: AGPL-3.0-or-later
from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    label = "reports"
    verbose_name = "Phản ánh hiện trường / Citizen reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Notification senders plug in here (a registry, reset-able in tests).
        from reports.services import notify

        notify.register_builtin_senders()
