# SPDX-License-Identifier: AGPL-3.0-or-later
"""Report categories are data: read ``report_categories.toml`` and bring the table in line."""
from __future__ import annotations

import tomllib
from pathlib import Path

from django.conf import settings
from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reports.models import ReportCategory
from twin.errors import InvalidInput

DEFAULT_FILE = "fixtures/reports/report_categories.toml"


class CategorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,59}$", description="Stable id, the Open311 service_code")
    name_vi: str = Field(min_length=1, description="Vietnamese name (shown first)")
    name_en: str = Field(min_length=1, description="English name")
    deadline_hours: int = Field(gt=0, le=24 * 90, description="Handling deadline from filing, hours")
    route_as: str = Field(min_length=1, description="Agency category the routing chain looks for")
    group: str = Field(default="", description="Open311 service group")
    keywords: list[str] = Field(default_factory=list, description="Open311 keywords")


class CategoriesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: list[CategorySpec] = Field(min_length=1)


def categories_path() -> Path:
    return Path(getattr(settings, "REPORT_CATEGORIES_FILE", "") or Path(settings.BASE_DIR) / DEFAULT_FILE)


def load_categories(path: Path | str | None = None) -> list[ReportCategory]:
    """Create or update every category of the file; categories left out are deactivated, not deleted
    (old reports keep theirs)."""
    path = Path(path) if path else categories_path()
    try:
        parsed = CategoriesFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"cannot read report categories {path}: {exc}") from None
    except ValidationError as exc:
        raise InvalidInput(f"invalid report categories {path}: {exc}") from None
    codes = [c.code for c in parsed.categories]
    if len(set(codes)) != len(codes):
        raise InvalidInput(f"report categories {path}: a code is listed twice")
    with transaction.atomic():
        rows = [ReportCategory.objects.update_or_create(code=spec.code, defaults={**spec.model_dump(exclude={"code"}),
                                                                                   "active": True})[0]
                for spec in parsed.categories]
        ReportCategory.objects.exclude(code__in=codes).update(active=False)
    return rows


def ensure_categories() -> None:
    """Load the default file when the table is empty (a fresh database, the tests)."""
    if not ReportCategory.objects.exists():
        load_categories()
