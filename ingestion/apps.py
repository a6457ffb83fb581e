# SPDX-License-Identifier: AGPL-3.0-or-later
from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"
    verbose_name = "Thu nhận dữ liệu / Ingestion"
    default_auto_field = "django.db.models.BigAutoField"
