# SPDX-License-Identifier: AGPL-3.0-or-later
from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"
    verbose_name = "Thu nhận dữ liệu / Ingestion"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registry wiring happens here, never as an import side effect.
        from ingestion import checks  # noqa: F401  (registers the ingestion configuration check)
        from ingestion.rules.base import register_builtin_rules

        register_builtin_rules()
