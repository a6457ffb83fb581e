# SPDX-License-Identifier: AGPL-3.0-or-later
from django.apps import AppConfig


class LayersConfig(AppConfig):
    name = "layers"
    verbose_name = "Lớp dữ liệu / Layers API"

    def ready(self) -> None:
        # Registry wiring happens here, never as an import side effect.
        from django.db.models.signals import post_delete, post_save

        from layers import registry
        from layers.tilecache import forget_layer
        from twin.models import Layer
        from twin.signals import layer_data_changed

        registry.register_builtin()
        # The tile endpoints reuse layer rows for a second (layers/tilecache.py): drop them on change.
        layer_data_changed.connect(forget_layer, dispatch_uid="layers-tile-lookups")
        post_save.connect(_forget_saved_layer, sender=Layer, dispatch_uid="layers-tile-lookups-save")
        post_delete.connect(_forget_saved_layer, sender=Layer, dispatch_uid="layers-tile-lookups-delete")


def _forget_saved_layer(sender, instance, **_) -> None:
    from layers.tilecache import forget_layer

    forget_layer(layer_id=instance.pk)
