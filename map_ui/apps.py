# SPDX-License-Identifier: AGPL-3.0-or-later
from django.apps import AppConfig


class MapUiConfig(AppConfig):
    name = "map_ui"
    verbose_name = "CityTwin — bản đồ / map UI"

    def ready(self) -> None:
        # Registry wiring happens here, never as an import side effect.
        from django.core import checks

        from map_ui.checks import check_vendored_assets

        checks.register(check_vendored_assets, checks.Tags.staticfiles)
