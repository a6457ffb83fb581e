# SPDX-License-Identifier: AGPL-3.0-or-later
from django.urls import path

from cameras import views

urlpatterns = [
    path("snapshots/<path:path>", views.snapshot, name="camera-snapshot"),
]
