# SPDX-License-Identifier: AGPL-3.0-or-later
from django.apps import AppConfig


class LayersConfig(AppConfig):
    name = "layers"
    verbose_name = "Lớp dữ liệu / Layers API"

    def ready(self) -> None:
        # Registry wiring happens here, never as an import side effect.
        from layers import registry

        registry.register_builtin()
