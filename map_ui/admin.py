# SPDX-License-Identifier: AGPL-3.0-or-later
"""Admin of the saved video-wall views: administrators edit them, wall users may look."""
from django.contrib import admin

from map_ui.models import WallView
from twin.admin import ALL_CAPABILITIES, RoleAdmin
from twin.roles import Capability


@admin.register(WallView)
class WallViewAdmin(RoleAdmin):
    view_capability = Capability.READ_EVENTS
    change_capability = ALL_CAPABILITIES          # administrators (or superusers)
    list_display = ("name_vi", "name_en", "city", "order", "zoom", "dwell_s")
    list_editable = ("order", "dwell_s")
    list_filter = ("city",)
    search_fields = ("name_vi", "name_en")
    fields = ("city", "name_vi", "name_en", ("longitude", "latitude"), ("zoom", "pitch", "bearing"), "layers",
              "dwell_s", "order")
