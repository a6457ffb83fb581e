# SPDX-License-Identifier: AGPL-3.0-or-later
from django.apps import AppConfig


class CamerasConfig(AppConfig):
    name = "cameras"
    verbose_name = "Phân tích camera / Camera analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registry wiring happens here, never as an import side effect.
        from cameras import kinds, rules

        kinds.register_camera_kinds()
        rules.register_camera_rules()
