# SPDX-License-Identifier: AGPL-3.0-or-later
"""The Django admin for every model of the spatial core.

Two rules shape it:

- **Roles, not per-model permissions.** Each admin states which capability
  (:mod:`twin.roles`) lets a user see it and which lets them change it;
  superusers may do everything.
- **Writes go through services.** Features and layers are saved with
  :func:`~twin.services.write_features` / :func:`~twin.services.ensure_layer`,
  events are raised with :func:`~twin.services.raise_event` and move only
  through :func:`~twin.services.transition_event` (actions and a form on the
  change page; the status field is read-only), tokens and device secrets are
  issued by :mod:`twin.services.access` and shown once.

Every geometry field uses :class:`~twin.admin_widgets.OfflineMapWidget`.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import shapely
from django.contrib import admin, messages
from django.contrib.gis.admin import GISModelAdmin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from twin.admin_forms import DeviceCredentialForm, FeatureForm, LayerForm, ObservationForm
from twin.admin_widgets import OfflineMapWidget
from twin.errors import TwinError
from twin.models import (AdminArea, Agency, ApiToken, City, DeviceCredential, EventStatus, Feature, GeoEvent,
                         GeoEventTransition, Layer, Observation)
from twin.models.events import ALLOWED_TRANSITIONS
from twin.roles import Capability, capabilities_of
from twin.services import (EventDraft, FeatureRow, ObservationRow, create_api_token, create_device_credential,
                           ensure_layer, raise_event, record_observations, transition_event, write_features)
from twin.services.features import bump_layer_versions
from twin.services.users import deactivate_device_credentials, revoke_api_tokens

logger = logging.getLogger(__name__)

admin.site.site_header = "CityTwin — Quản trị / Administration"
admin.site.site_title = "CityTwin"
admin.site.index_title = "Quản trị dữ liệu / Data administration"

ALL_CAPABILITIES = frozenset(Capability)
C = Capability


def _capabilities(request: HttpRequest) -> frozenset[Capability]:
    # Admin pages ask for permissions dozens of times; look the groups up once.
    if not hasattr(request, "_twin_capabilities"):
        user = request.user
        request._twin_capabilities = capabilities_of(user) if user.is_active and user.is_staff else frozenset()
    return request._twin_capabilities


def allowed(request: HttpRequest, capability: Capability | frozenset | None) -> bool:
    """Whether the user may act; ``None`` means superusers only, a set means all of it."""
    if request.user.is_active and request.user.is_superuser:
        return True
    if capability is None:
        return False
    wanted = capability if isinstance(capability, frozenset) else frozenset({capability})
    return wanted <= _capabilities(request)


class RoleAdmin(GISModelAdmin):
    """Base admin: permissions from the role table, the offline map widget for geometry."""

    gis_widget = OfflineMapWidget
    view_capability: Capability | frozenset | None = C.READ_PRIVATE_LAYERS
    change_capability: Capability | frozenset | None = None
    delete_capability: Capability | frozenset | None = None  # None: same as change
    readonly_on_change: tuple[str, ...] = ()

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return allowed(request, self.view_capability) or self.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return allowed(request, self.change_capability)

    def has_add_permission(self, request):
        return self.has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return allowed(request, self.delete_capability or self.change_capability)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields + self.readonly_on_change if obj is not None else fields


class NoSaveButtonsMixin:
    """Change pages whose fields are all read-only: edits happen through actions."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False,
                   **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context=context)


class ShowSecretOnceMixin:
    """After adding, show the generated secret on a page of its own, once.

    Not through ``messages``: the default message storage is a cookie, and
    a secret has no business in a cookie.
    """

    secret_title = ""

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_twin_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "title": self.secret_title, "object": obj,
                   "secret": secret, "opts": self.model._meta,
                   "changelist_url": reverse(f"admin:twin_{self.model._meta.model_name}_changelist")}
        return TemplateResponse(request, "admin/twin/secret_once.html", context)


# --- reference data: cities, admin areas, agencies ---

@admin.register(City)
class CityAdmin(RoleAdmin):
    change_capability = C.MANAGE_LAYERS
    list_display = ("slug", "name_vi", "name_en", "province", "loaded_at")
    search_fields = ("slug", "name_vi", "name_en")
    autocomplete_fields = ("province",)
    readonly_fields = ("loaded_at",)


@admin.register(AdminArea)
class AdminAreaAdmin(RoleAdmin):
    change_capability = C.MANAGE_LAYERS
    list_display = ("code", "name_vi", "name_en", "level", "parent", "area_km2")
    list_filter = ("level",)
    search_fields = ("=code", "name_vi", "name_en", "full_name_vi")
    list_select_related = ("parent",)
    autocomplete_fields = ("parent",)
    raw_id_fields = ("feature",)


@admin.register(Agency)
class AgencyAdmin(RoleAdmin):
    change_capability = C.MANAGE_LAYERS
    list_display = ("code", "name_vi", "name_en", "category_list", "phone")
    search_fields = ("=code", "name_vi", "name_en")
    autocomplete_fields = ("jurisdiction",)
    raw_id_fields = ("feature",)

    @admin.display(description="lĩnh vực / categories")
    def category_list(self, obj: Agency) -> str:
        return ", ".join(obj.categories)

    @admin.display(description="điện thoại / phone")
    def phone(self, obj: Agency) -> str:
        return str(obj.contact.get("hotline") or obj.contact.get("phone") or "")


# --- layers, features, observations ---

@admin.register(Layer)
class LayerAdmin(RoleAdmin):
    form = LayerForm
    change_capability = C.MANAGE_LAYERS
    list_display = ("slug", "title_vi", "kind", "geometry_type", "is_public", "city", "features_link")
    list_filter = ("kind", "is_public", "city")
    search_fields = ("slug", "title_vi", "title_en")
    readonly_on_change = ("slug",)

    @admin.display(description="đối tượng / features")
    def features_link(self, obj: Layer) -> str:
        url = reverse("admin:twin_feature_changelist") + f"?layer__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, "xem / view")

    def save_model(self, request, obj, form, change):
        saved = ensure_layer(form.spec(), city=form.cleaned_data.get("city"))
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at


@admin.register(Feature)
class FeatureAdmin(RoleAdmin):
    form = FeatureForm
    change_capability = C.WRITE_FEATURES
    list_display = ("__str__", "external_id", "layer", "status", "updated_at")
    list_filter = ("layer", "status")
    search_fields = ("name", "=external_id")
    list_select_related = ("layer",)
    ordering = ("-id",)
    show_full_result_count = False  # ~60k rows: no second COUNT(*) per page
    readonly_on_change = ("layer", "external_id", "observations_link", "last_seen", "created_at", "updated_at")

    @admin.display(description="quan trắc / observations")
    def observations_link(self, obj: Feature) -> str:
        url = reverse("admin:twin_observation_changelist") + f"?feature={obj.pk}&window=all"
        return format_html('<a href="{}">{}</a>', url, "xem / view")

    def save_model(self, request, obj, form, change):
        row = FeatureRow(external_id=obj.external_id, geom=shapely.from_wkb(bytes(obj.geom.wkb)),
                         properties=obj.properties, name=obj.name, height_m=obj.height_m, status=obj.status)
        write_features(obj.layer, [row], on_invalid="reject")
        saved = Feature.objects.get(layer=obj.layer, external_id=obj.external_id)
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at

    # Deletes bypass write_features: bump the layers' data version in the same
    # transaction so cached vector tiles of those layers are not served again.
    def delete_model(self, request, obj):
        with transaction.atomic():
            super().delete_model(request, obj)
            bump_layer_versions([obj.layer_id])

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            layer_ids = list(queryset.order_by().values_list("layer_id", flat=True).distinct())
            super().delete_queryset(request, queryset)
            bump_layer_versions(layer_ids)


class ObservationWindowFilter(admin.SimpleListFilter):
    """A time window, 24 hours by default: the table is huge and ordered scans need one."""

    title = "thời gian / time"
    parameter_name = "window"
    default = "24h"
    WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
               "30d": timedelta(days=30), "all": None}

    def lookups(self, request, model_admin):
        return [("1h", "1 giờ / 1 hour"), ("24h", "24 giờ / 24 hours"), ("7d", "7 ngày / 7 days"),
                ("30d", "30 ngày / 30 days"), ("all", "tất cả / all")]

    def value(self):
        value = super().value()
        return value if value in self.WINDOWS else self.default

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {"selected": self.value() == lookup, "display": title,
                   "query_string": changelist.get_query_string({self.parameter_name: lookup})}

    def queryset(self, request, queryset):
        window = self.WINDOWS[self.value()]
        return queryset if window is None else queryset.filter(time__gte=timezone.now() - window)


class ObservedFeatureFilter(admin.SimpleListFilter):
    """Filter by one feature id (linked from the feature's page); no list of 60k choices."""

    title = "đối tượng / feature"
    parameter_name = "feature"

    def lookups(self, request, model_admin):
        value = self.value()
        if not value:
            return []
        if not value.isdigit():
            return [(value, "?")]
        feature = Feature.objects.filter(pk=int(value)).first()
        return [(value, str(feature) if feature else f"#{value} (không có / missing)")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(feature_id=int(value)) if value.isdigit() else queryset.none()


@admin.register(Observation)
class ObservationAdmin(RoleAdmin):
    """Readings are evidence: added through the service, never edited in place."""

    form = ObservationForm
    change_capability = None
    delete_capability = C.WRITE_FEATURES
    list_display = ("time", "feature_id", "values")
    list_filter = (ObservationWindowFilter, ObservedFeatureFilter)
    ordering = ("-time",)
    show_full_result_count = False
    raw_id_fields = ("feature",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return allowed(request, C.WRITE_FEATURES)

    def save_model(self, request, obj, form, change):
        position = obj.position
        record_observations([ObservationRow(feature_id=obj.feature_id, time=obj.time, values=obj.values,
                                            lon=position.x if position else None,
                                            lat=position.y if position else None)])
        obj.pk = Observation.objects.get(feature_id=obj.feature_id, time=obj.time).pk


# --- events ---

class TransitionInline(admin.TabularInline):
    """The event's history, read-only: it is written by the services alone."""

    model = GeoEventTransition
    extra = 0
    can_delete = False
    fields = ("at", "from_status", "to_status", "actor_label", "note")
    readonly_fields = fields
    ordering = ("at", "id")

    def has_view_permission(self, request, obj=None):
        return allowed(request, C.READ_EVENTS)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _transition_action(to_status: str, label: str):
    def action(modeladmin: GeoEventAdmin, request: HttpRequest, queryset) -> None:
        moved, refused = 0, []
        for event_id in queryset.values_list("pk", flat=True):
            try:
                transition_event(event_id, to_status, actor=request.user, note="admin action")
                moved += 1
            except TwinError as exc:
                refused.append(exc.message)
        if moved:
            modeladmin.message_user(request, f"{moved} sự kiện → {to_status} / {moved} event(s) → {to_status}")
        if refused:
            modeladmin.message_user(request, "; ".join(refused[:10]), level=messages.WARNING)

    action.__name__ = f"mark_{to_status}"
    return admin.action(description=label, permissions=["handle"])(action)


EVENT_FIELDS = ("kind", "category", "severity", "title", "geom", "occurred_at", "payload", "layer",
                "source_feature", "source_key")


@admin.register(GeoEvent)
class GeoEventAdmin(NoSaveButtonsMixin, RoleAdmin):
    """Events are raised through ``raise_event`` and change state only through ``transition_event``."""

    view_capability = C.READ_EVENTS
    change_capability = C.HANDLE_EVENTS
    delete_capability = ALL_CAPABILITIES
    change_form_template = "admin/twin/geoevent/change_form.html"
    list_display = ("__str__", "category", "severity", "status", "ward", "agency", "occurred_at")
    list_filter = ("status", "severity", "kind", "category")
    search_fields = ("title", "=category", "=source_key")
    list_select_related = ("ward", "agency")
    autocomplete_fields = ("layer",)
    raw_id_fields = ("source_feature",)
    ordering = ("-occurred_at", "-id")
    show_full_result_count = False
    inlines = (TransitionInline,)
    actions = [
        _transition_action(EventStatus.ACKNOWLEDGED, "Tiếp nhận / Acknowledge"),
        _transition_action(EventStatus.DISPATCHED, "Điều phối / Dispatch"),
        _transition_action(EventStatus.RESOLVED, "Đã xử lý / Resolve"),
        _transition_action(EventStatus.DISMISSED, "Bỏ qua / Dismiss"),
    ]

    def has_handle_permission(self, request) -> bool:
        return allowed(request, C.HANDLE_EVENTS)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()  # a new event has no history yet

    def get_fields(self, request, obj=None):
        if obj is None:
            return EVENT_FIELDS
        return ("title", "kind", "category", "severity", "status", "occurred_at", "location", "ward", "agency",
                "layer", "source_feature", "source_key", "payload", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    @admin.display(description="vị trí / location")
    def location(self, obj: GeoEvent) -> str:
        point = obj.geom.point_on_surface
        return f"{obj.geom.geom_type} · {point.y:.6f}, {point.x:.6f} (lat, lon)"

    def save_model(self, request, obj, form, change):
        if change:  # every field is read-only on change; nothing to write
            return
        draft = EventDraft(kind=obj.kind, category=obj.category, geom=obj.geom, occurred_at=obj.occurred_at,
                           severity=obj.severity, title=obj.title, payload=obj.payload,
                           source_feature_id=obj.source_feature_id, layer_slug=obj.layer.slug if obj.layer else None,
                           source_key=obj.source_key or None, producer=request.user.get_username())
        event, _ = raise_event(draft)
        obj.pk, obj.status, obj.created_at, obj.updated_at = event.pk, event.status, event.created_at, event.updated_at

    def change_view(self, request, object_id, form_url="", extra_context=None):
        event = self.get_object(request, object_id)
        choices = sorted(ALLOWED_TRANSITIONS.get(event.status, ())) if event else []
        context = {"transition_choices": [(s, EventStatus(s).label) for s in choices],
                   "can_transition": self.has_handle_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def get_urls(self):
        extra = [path("<path:object_id>/transition/", self.admin_site.admin_view(self.transition_view),
                      name="twin_geoevent_transition")]
        return extra + super().get_urls()

    def transition_view(self, request: HttpRequest, object_id: str):
        """POST from the change page: one transition with a note, recorded with the actor."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_handle_permission(request):
            raise PermissionDenied
        try:
            event = transition_event(int(object_id), request.POST.get("status", ""), actor=request.user,
                                     note=request.POST.get("note", "")[:2000])
            self.message_user(request, f"→ {EventStatus(event.status).label}")
        except (TwinError, ValueError) as exc:
            self.message_user(request, getattr(exc, "message", "invalid request"), level=messages.ERROR)
        return redirect(reverse("admin:twin_geoevent_change", args=[object_id]))


# --- credentials: API tokens and devices (secrets shown once, hashes never) ---

@admin.register(ApiToken)
class ApiTokenAdmin(ShowSecretOnceMixin, NoSaveButtonsMixin, RoleAdmin):
    secret_title = "Mã truy cập API mới / New API token"
    view_capability = ALL_CAPABILITIES
    change_capability = ALL_CAPABILITIES
    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "expires_at", "revoked")
    list_filter = ("revoked",)
    search_fields = ("=prefix", "name", "user__username")
    list_select_related = ("user",)
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "expires_at")
        return ("prefix", "user", "name", "created_at", "last_used_at", "expires_at", "revoked")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    @admin.action(description="Thu hồi / Revoke", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        count = revoke_api_tokens(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} mã đã thu hồi / token(s) revoked")

    def save_model(self, request, obj, form, change):
        if change:
            return
        token, request._twin_secret = create_api_token(obj.user, obj.name, expires_at=obj.expires_at)
        obj.pk, obj.prefix, obj.created_at = token.pk, token.prefix, token.created_at


@admin.register(DeviceCredential)
class DeviceCredentialAdmin(ShowSecretOnceMixin, NoSaveButtonsMixin, RoleAdmin):
    secret_title = "Thông tin đăng nhập thiết bị mới / New device credential"
    form = DeviceCredentialForm
    view_capability = C.MANAGE_DEVICES
    change_capability = C.MANAGE_DEVICES
    list_display = ("client_id", "feature", "active", "created_at", "last_seen")
    list_filter = ("active",)
    search_fields = ("client_id",)
    list_select_related = ("feature",)
    raw_id_fields = ("feature",)
    actions = ["deactivate"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("feature", "client_id")
        return ("client_id", "feature", "active", "created_at", "last_seen")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    @admin.action(description="Vô hiệu hoá / Deactivate", permissions=["change"])
    def deactivate(self, request, queryset) -> None:
        count = deactivate_device_credentials(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} thiết bị đã vô hiệu hoá / device credential(s) deactivated")

    def save_model(self, request, obj, form, change):
        if change:
            return
        credential, request._twin_secret = create_device_credential(obj.feature, form.cleaned_data.get("client_id")
                                                                    or None)
        obj.pk, obj.client_id, obj.created_at = credential.pk, credential.client_id, credential.created_at
