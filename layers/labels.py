# SPDX-License-Identifier: AGPL-3.0-or-later
"""Labels of the HTML pages, Vietnamese first and English second.

A plain table instead of gettext catalogues: the API has a few dozen
labels, and a table needs no ``compilemessages`` step in the build.

>>> label("vi", "collections"), label("en", "collections")
('Bộ dữ liệu', 'Collections')
"""
from __future__ import annotations

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

LABELS: dict[str, dict[str, str]] = {
    "site": {"vi": "CityTwin — Bản sao số đô thị", "en": "CityTwin — city digital twin"},
    "api_title": {"vi": "API lớp dữ liệu (OGC API – Features)", "en": "Layers API (OGC API – Features)"},
    "intro": {"vi": "Dữ liệu không gian của trung tâm điều hành đô thị thông minh: lớp bản đồ, quan trắc và "
                    "sự kiện, theo chuẩn OGC API – Features (GeoJSON, lọc CQL2).",
              "en": "Spatial data of the city operations centre: map layers, observations and events, "
                    "served as OGC API – Features (GeoJSON, CQL2 filtering)."},
    "collections": {"vi": "Bộ dữ liệu", "en": "Collections"},
    "conformance": {"vi": "Các chuẩn tuân thủ", "en": "Conformance"},
    "api_doc": {"vi": "Mô tả API (OpenAPI 3.0)", "en": "API definition (OpenAPI 3.0)"},
    "admin": {"vi": "Trang quản trị", "en": "Administration"},
    "attribution": {"vi": "Nguồn dữ liệu", "en": "Data attribution"},
    "items": {"vi": "Đối tượng", "en": "Features"},
    "queryables": {"vi": "Thuộc tính truy vấn", "en": "Queryables"},
    "id": {"vi": "Mã", "en": "Id"},
    "title": {"vi": "Tên", "en": "Title"},
    "kind": {"vi": "Loại", "en": "Kind"},
    "description": {"vi": "Mô tả", "en": "Description"},
    "extent": {"vi": "Phạm vi", "en": "Extent"},
    "temporal": {"vi": "Thời gian", "en": "Time"},
    "geometry": {"vi": "Hình học", "en": "Geometry"},
    "type": {"vi": "Kiểu", "en": "Type"},
    "property": {"vi": "Thuộc tính", "en": "Property"},
    "value": {"vi": "Giá trị", "en": "Value"},
    "matched": {"vi": "Số đối tượng khớp", "en": "Matched"},
    "returned": {"vi": "Số đối tượng trả về", "en": "Returned"},
    "unknown_count": {"vi": "hơn 100.000", "en": "more than 100,000"},
    "next": {"vi": "Trang sau", "en": "Next page"},
    "prev": {"vi": "Trang trước", "en": "Previous page"},
    "json": {"vi": "Xem dạng JSON", "en": "View as JSON"},
    "collection": {"vi": "Bộ dữ liệu", "en": "Collection"},
    "feature": {"vi": "Đối tượng", "en": "Feature"},
    "home": {"vi": "Trang chủ", "en": "Home"},
    "language": {"vi": "English", "en": "Tiếng Việt"},
    "none": {"vi": "Không có đối tượng nào.", "en": "No features."},
    "examples": {"vi": "Ví dụ truy vấn", "en": "Example requests"},
    "private": {"vi": "Lớp riêng tư (cần đăng nhập)", "en": "Private layer (login needed)"},
}


def label(lang: str, key: str) -> str:
    return LABELS[key].get(lang) or LABELS[key][DEFAULT_LANGUAGE]


def labels(lang: str) -> dict[str, str]:
    """Every label in ``lang``, for templates (``{{ t.collections }}``)."""
    return {key: label(lang, key) for key in LABELS}


def choose_language(param: str | None, accept_language: str) -> str:
    """``lang=vi|en`` wins; else the first of vi/en in Accept-Language; else Vietnamese."""
    if param in LANGUAGES:
        return param
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE
