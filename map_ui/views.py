# SPDX-License-Identifier: AGPL-3.0-or-later
"""The 3D operations map page (``/map/``) and its video-wall layout (``/map/wall/``).

The page is a shell: everything it draws comes from the layers API (vector
tiles, OGC API Features, spatial endpoints), ``/api/events`` and the
``/ws/live`` socket, read with the visitor's own session, so the map shows
exactly what the user's role may read. The view only renders what the
script cannot know by itself: the city's place on Earth, the user's
capabilities, the language and the strings of that language.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import translation
from django.views.decorators.http import require_GET

from layers.collections import readable_collections
from layers.ogc import ApiRequest, collection_document
from map_ui.catalogue import catalogue
from map_ui.wall import city_views
from twin.auth import json_api, requires
from twin.errors import InvalidInput
from twin.models import City
from twin.roles import Capability, has_capability

# Where a city without a centre opens (no city loaded yet): Việt Nam as a whole.
FALLBACK_VIEW = {"longitude": 106.0, "latitude": 16.0, "zoom": 5}


def _city_view(city: City | None) -> dict[str, Any]:
    """The city's name, opening view and bounds for the script."""
    if city is None:
        return {"slug": None, "name_vi": "", "name_en": "", "view": FALLBACK_VIEW, "bounds": None,
                "attribution": ""}
    centre = city.center or city.extent.centroid
    x0, y0, x1, y1 = city.extent.extent
    return {"slug": city.slug, "name_vi": city.name_vi, "name_en": city.name_en or city.name_vi,
            "view": {"longitude": centre.x, "latitude": centre.y, "zoom": city.default_zoom},
            "bounds": [x0, y0, x1, y1], "attribution": city.attribution}


def _user(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {"name": user.get_username() if user.is_authenticated else None,
            "read_events": has_capability(user, Capability.READ_EVENTS),
            "handle_events": has_capability(user, Capability.HANDLE_EVENTS),
            "read_private": has_capability(user, Capability.READ_PRIVATE_LAYERS)}


def _map_collections(request: HttpRequest, lang: str) -> list[dict[str, Any]]:
    """The layer list the map draws, as ``/collections`` would give it to this user.

    Why here: rendered into the page, the list needs no round trip before the
    first frame (the tiles start loading as soon as the script runs). Built by
    the layers API's own functions, so it is exactly what the user may read;
    observation series (``slug.observations``) are not map layers.
    """
    req = ApiRequest(base=f"{request.scheme}://{request.get_host()}", path="/collections", params={},
                     user=request.user, lang=lang)
    return [collection_document(req, c) for c in readable_collections(request.user) if "." not in c.id]


def page_config(request: HttpRequest, mode: str) -> dict[str, Any]:
    """Everything the script needs to start, rendered as JSON into the page."""
    lang = translation.get_language() or settings.LANGUAGE_CODE
    city = City.objects.filter(slug=settings.DEFAULT_CITY).first() or City.objects.order_by("pk").first()
    return {
        "mode": mode, "lang": "en" if lang.startswith("en") else "vi",
        "city": _city_view(city), "user": _user(request), "csrf": get_token(request),
        "strings": catalogue(lang),
        "collections": _map_collections(request, "en" if lang.startswith("en") else "vi"),
        "urls": {"collections": "/collections", "tiles": "/tiles", "events": "/api/events",
                 "live": "/ws/live", "wallViews": "/map/wall/views",
                 "fonts": [static("map_ui/fonts/be-vietnam-pro-latin-400-normal.woff2"),
                           static("map_ui/fonts/be-vietnam-pro-vietnamese-400-normal.woff2")]},
    }


def _render(request: HttpRequest, mode: str) -> HttpResponse:
    config = page_config(request, mode)
    response = render(request, "map_ui/map.html", {"config": config, "t": config["strings"],
                                                    "mode": mode, "languages": settings.LANGUAGES})
    # The page is its user's view of the city: never cached by a shared proxy.
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def map_page(request: HttpRequest) -> HttpResponse:
    """The operator/planner console: 3D map, layer panel, alerts, details, tools."""
    return _render(request, "console")


@require_GET
def wall_page(request: HttpRequest) -> HttpResponse:
    """The video-wall layout: map, alert ticker and KPI tiles, no controls."""
    return _render(request, "wall")


@json_api
@requires(Capability.READ_EVENTS)
def wall_views(request: HttpRequest) -> JsonResponse:
    """``GET /map/wall/views[?city=slug]``: the city's saved wall views, in wall order.

    Read by the wall page (users who see alerts on the wall: operators, leaders,
    responders, ...); administrators edit the views in the admin.
    """
    slug = request.GET.get("city", "").strip() or settings.DEFAULT_CITY
    unknown = sorted(set(request.GET) - {"city"})
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0][:40]!r}; this endpoint takes city")
    if len(slug) > 63 or not slug.replace("-", "").isalnum():
        raise InvalidInput("parameter 'city' must be a city slug such as 'hue'")
    views = city_views(slug)
    response = JsonResponse({"city": slug, "numberReturned": len(views), "views": views},
                            json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "private, max-age=30"
    return response


class MapLoginView(auth_views.LoginView):
    """Sign-in for operators; the admin's login is for staff only."""

    template_name = "map_ui/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return "/map/"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["t"] = catalogue(translation.get_language() or settings.LANGUAGE_CODE)
        return context
