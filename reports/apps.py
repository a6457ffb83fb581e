# SPDX-License-Identifier: AGPL-3.0-or-later
from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _load_categories_once(**kwargs) -> None:
    """A fresh database gets the default categories after ``migrate`` (no hand step, like the roles)."""
    from reports.services.categories import ensure_categories

    ensure_categories()


class ReportsConfig(AppConfig):
    name = "reports"
    label = "reports"
    verbose_name = "Phản ánh hiện trường / Citizen reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Notification senders plug in here (a registry, reset-able in tests).
        from reports.services import notify

        notify.register_builtin_senders()
        post_migrate.connect(_load_categories_once, sender=self, dispatch_uid="reports-categories")
