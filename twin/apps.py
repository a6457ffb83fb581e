# SPDX-License-Identifier: AGPL-3.0-or-later
from django.apps import AppConfig


class TwinConfig(AppConfig):
    name = "twin"
    verbose_name = "CityTwin — lõi không gian / spatial core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registry wiring happens here, never as an import side effect.
        from django.db.models.signals import post_migrate

        from twin import checks  # noqa: F401  (registers system checks)
        from twin.kinds import register_builtin_kinds
        from twin.roles import sync_roles

        register_builtin_kinds()
        post_migrate.connect(sync_roles, sender=self)
