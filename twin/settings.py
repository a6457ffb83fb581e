# SPDX-License-Identifier: AGPL-3.0-or-later
"""Django settings, read from the environment with safe local defaults.

Every deploy-specific value comes from an environment variable so that the
same code runs on a laptop, in CI and in a province's data centre. When a
variable is absent we fall back to the project-local services written by
``scripts/services.sh`` into ``.run/env`` and then to localhost defaults.
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _read_run_env(path: Path) -> dict[str, str]:
    """Parse ``export KEY=VALUE`` lines written by ``scripts/services.sh``."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip().removeprefix("export ").strip()
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


_RUN_ENV = _read_run_env(BASE_DIR / ".run" / "env")


def env(name: str, default: str | None = None) -> str | None:
    """An environment variable, else the project-local service file, else default."""
    return os.environ.get(name) or _RUN_ENV.get(name) or default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "citytwin-insecure-local-development-key-change-me"  # noqa: S105 (dev only)

ALLOWED_HOSTS = [h.strip() for h in (env("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver") or "").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in (env("CSRF_TRUSTED_ORIGINS", "") or "").split(",") if o.strip()]

INSTALLED_APPS = [
    # Daphne first: its ``runserver`` replaces Django's and serves the ASGI
    # application, so ``twin runserver`` (and ``make demo``) speak WebSocket too.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "twin.apps.TwinConfig",
    "layers.apps.LayersConfig",
    "ingestion.apps.IngestionConfig",
    "cameras.apps.CamerasConfig",
    "map_ui.apps.MapUiConfig",
    "reports.apps.ReportsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "twin.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "twin.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "twin" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/citytwin")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
# GeoDjango needs its own backend whatever scheme the URL used.
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
DATABASES["default"].setdefault("TEST", {})["NAME"] = env("TEST_DATABASE_NAME", "test_citytwin")

MQTT_URL = env("MQTT_URL", "mqtt://127.0.0.1:1883")

# Live push (docs/live.md). Committed event and feature-state changes are republished on MQTT under
# LIVE_TOPIC_ROOT ({root}/{city}/events/{id}, {root}/{city}/features/{layer}/{id}/state) by every process
# that commits them; each web process subscribes once and fans them out to /ws/live. MQTT is the bus
# between processes, so no channel layer (Redis) is needed. LIVE_ANNOUNCER="" turns announcing off.
LIVE = {
    "topic_root": env("LIVE_TOPIC_ROOT", "city"),
    "coalesce_ms": int(env("LIVE_COALESCE_MS", "100") or 100),
    "seen_interval_s": float(env("LIVE_SEEN_INTERVAL_S", "10") or 10),
}
LIVE_ANNOUNCER = env("LIVE_ANNOUNCER", "ingestion.live.announce") if os.environ.get("LIVE_ANNOUNCER") != "" else ""

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Operators are Vietnamese: Vietnamese first, English second.
LANGUAGE_CODE = "vi"
LANGUAGES = [("vi", "Tiếng Việt"), ("en", "English")]
TIME_ZONE = env("TIME_ZONE", "Asia/Ho_Chi_Minh")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".run" / "static"

# Where city data lives. ``../shared/data`` is the upstream open-data folder;
# the project ships its own copy under ``fixtures/``.
CITY_FIXTURES_DIR = Path(env("CITY_FIXTURES_DIR", str(BASE_DIR / "fixtures" / "cities")) or "")
DEFAULT_CITY = env("DEFAULT_CITY", "hue")

# The admin's map widget draws admin-area outlines from our own database as its
# base map (no remote tiles); this line credits where those outlines came from.
ADMIN_BASEMAP_ATTRIBUTION = env(
    "ADMIN_BASEMAP_ATTRIBUTION", "© Thang Le Quoc, Vietnamese Provinces Database (MIT)"
)

# Citizen-report photos and videos, as files named by their SHA-256 (reports/services/media_store.py).
# One directory per database: `twin prune_report_media` deletes what that database does not reference.
REPORTS_MEDIA_DIR = Path(env("REPORTS_MEDIA_DIR", str(BASE_DIR / ".run" / "media")) or "")

# Upload and import limits: oversized input is rejected before it is read.
IMPORT_MAX_BYTES = int(env("IMPORT_MAX_BYTES", str(512 * 1024 * 1024)) or 0)
DATA_UPLOAD_MAX_MEMORY_SIZE = int(env("DATA_UPLOAD_MAX_MEMORY_SIZE", str(10 * 1024 * 1024)) or 0)

# Vector tiles (layers/tiles.py, docs/tiles.md). Tiles are cached under their layer's data
# version, so an entry is never stale, only evicted; the cache just bounds memory. LocMem is per
# process; TILE_CACHE_DIR switches to a file cache shared by every worker on the host;
# TILE_CACHE_ENTRIES=0 turns the tile cache off (benchmarks of uncached tiles).
TILE_CACHE_DIR = env("TILE_CACHE_DIR")
TILE_CACHE_ENTRIES = int(env("TILE_CACHE_ENTRIES", "5000") or 0)
_TILE_CACHE_BACKEND = ("django.core.cache.backends.dummy.DummyCache" if TILE_CACHE_ENTRIES <= 0
                       else "django.core.cache.backends.filebased.FileBasedCache" if TILE_CACHE_DIR
                       else "django.core.cache.backends.locmem.LocMemCache")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "tiles": {
        "BACKEND": _TILE_CACHE_BACKEND,
        "LOCATION": TILE_CACHE_DIR or "citytwin-tiles",
        "TIMEOUT": 24 * 3600,
        "OPTIONS": {"MAX_ENTRIES": max(TILE_CACHE_ENTRIES, 1)},
    },
}
TILES = {
    "max_zoom": int(env("TILES_MAX_ZOOM", "22") or 22),
    "feature_cap": int(env("TILES_FEATURE_CAP", "5000") or 5000),
    "max_age": int(env("TILES_MAX_AGE", "30") or 30),
    "layer_ttl": float(env("TILES_LAYER_TTL", "1") or 1),
}

# EPSG codes /items?crs= may ask for (OGC API Features Part 2; layers/crs.py). Unset: WGS 84, Web
# Mercator, WGS 84 UTM 48N/49N and VN-2000 (geographic, UTM 48N/49N, every TM-3 zone).
if env("LAYERS_OUTPUT_CRS", ""):
    LAYERS_OUTPUT_CRS = tuple(int(code) for code in env("LAYERS_OUTPUT_CRS", "").replace("EPSG:", "").split(",")
                              if code.strip())

# GDAL 3.6 (Debian 12) cannot block network access while parsing SRS; CityTwin parses
# CRS with pyproj, never through GDAL on untrusted input, so the warning is noise.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}
