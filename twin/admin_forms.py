# SPDX-License-Identifier: AGPL-3.0-or-later
"""Admin forms: validate in ``clean`` what the services would refuse at save.

The admin saves through :mod:`twin.services`; these forms check the same
rules first (a feature's properties against its layer's kind, geometry
type, city extent; a layer against :class:`~twin.services.LayerSpec`) so a
mistake such as a camera heading of 400° shows up as a form error on the
right field instead of a failed save.
"""
from __future__ import annotations

from django import forms
from django.contrib.gis.geos import GEOSGeometry
from pydantic import ValidationError

from twin.kinds import KindError, all_kinds, get_kind
from twin.models import DeviceCredential, Feature, Layer, Observation
from twin.models.features import RESERVED_LAYER_SLUGS
from twin.services import LayerSpec
from twin.services.access import DEVICE_KINDS


def kind_choices() -> list[tuple[str, str]]:
    return [(k.name, f"{k.title_vi} / {k.title_en} ({k.name})") for k in all_kinds()]


class LayerForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=kind_choices)

    class Meta:
        model = Layer
        fields = ("slug", "title_vi", "title_en", "description", "kind", "geometry_type", "style", "is_public",
                  "attribution", "city")

    def clean(self):
        data = super().clean()
        slug = data.get("slug") or self.instance.slug
        if slug in RESERVED_LAYER_SLUGS:
            self.add_error("slug" if "slug" in self.fields else None, f"the id {slug!r} is reserved")
        values = {name: data.get(name) for name in LayerSpec.model_fields if name != "slug"}
        try:
            LayerSpec(slug=slug, **{k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else None
                self.add_error(field if field in self.fields else None, error["msg"])
        return data

    def spec(self) -> LayerSpec:
        data = self.cleaned_data
        return LayerSpec(slug=data.get("slug") or self.instance.slug,
                         **{name: data[name] for name in LayerSpec.model_fields if name != "slug" and name in data
                            and data[name] is not None})


class FeatureForm(forms.ModelForm):
    class Meta:
        model = Feature
        fields = ("layer", "external_id", "name", "geom", "properties", "status", "height_m")

    def _layer(self) -> Layer | None:
        return self.cleaned_data.get("layer") or (self.instance.layer if self.instance.layer_id else None)

    def clean(self):
        data = super().clean()
        layer = self._layer()
        if layer is None:
            return data
        kind = get_kind(layer.kind)
        if "properties" in data:
            try:
                data["properties"] = kind.validate(data["properties"])
            except KindError as exc:
                self.add_error("properties", str(exc))
        geom: GEOSGeometry | None = data.get("geom")
        if geom is not None:
            self._check_geometry(layer, kind, geom)
        return data

    def _check_geometry(self, layer: Layer, kind, geom: GEOSGeometry) -> None:
        try:
            kind.check_geometry_type(geom.geom_type)
        except KindError as exc:
            self.add_error("geom", str(exc))
            return
        if not geom.valid:
            self.add_error("geom", f"invalid geometry: {geom.valid_reason}")
        elif layer.city_id and not layer.city.extent.covers(geom):
            self.add_error("geom", f"outside the extent of {layer.city.name_vi}")


class ObservationForm(forms.ModelForm):
    class Meta:
        model = Observation
        fields = ("feature", "time", "values", "position")

    def clean(self):
        data = super().clean()
        feature, time = data.get("feature"), data.get("time")
        if feature and time and Observation.objects.filter(feature=feature, time=time).exists():
            raise forms.ValidationError("this feature already has an observation at that time")
        return data


class DeviceCredentialForm(forms.ModelForm):
    client_id = forms.CharField(max_length=100, required=False,
                                help_text="Leave empty for LAYER-EXTERNAL_ID.")

    class Meta:
        model = DeviceCredential
        fields = ("feature", "client_id")

    def clean(self):
        data = super().clean()
        feature = data.get("feature")
        if feature is None:
            return data
        if feature.layer.kind not in DEVICE_KINDS:
            self.add_error("feature", f"a {feature.layer.kind} feature is not a device "
                                      f"({', '.join(sorted(DEVICE_KINDS))})")
        client_id = data.get("client_id") or f"{feature.layer.slug}-{feature.external_id}"
        if DeviceCredential.objects.filter(client_id=client_id).exists():
            self.add_error("client_id", f"client id {client_id!r} is taken")
        return data

    def validate_unique(self) -> None:
        # The clean above checks the client id, including the default one.
        return None
