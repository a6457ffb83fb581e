# SPDX-License-Identifier: AGPL-3.0-or-later
"""Every label of the map page, Vietnamese first, English second.

One catalogue serves both the server-rendered page and the JavaScript: the
view picks the active Django language (LocaleMiddleware: the language cookie
set by ``set_language``, then ``Accept-Language``) and renders that column
into the page, so the bundle carries no strings of its own and a new
language is one more column here.
"""
from __future__ import annotations

from collections.abc import Mapping

# key: (Vietnamese, English)
STRINGS: Mapping[str, tuple[str, str]] = {
    "title": ("Bản đồ điều hành 3D", "3D operations map"),
    "layers": ("Lớp dữ liệu", "Layers"),
    "filter": ("Lọc theo thuộc tính", "Filter by property"),
    "filter_placeholder": ("vd. status=offline", "e.g. status=offline"),
    "filter_bad": ("Bộ lọc phải có dạng thuộc_tính=giá_trị", "A filter reads property=value"),
    "alerts": ("Cảnh báo", "Alerts"),
    "no_alerts": ("Không có cảnh báo đang mở", "No open alerts"),
    "login_for_alerts": ("Đăng nhập để xem cảnh báo", "Log in to see alerts"),
    "login": ("Đăng nhập", "Log in"),
    "logout": ("Đăng xuất", "Log out"),
    "search": ("Tìm địa điểm, phường, mã đối tượng", "Search place, ward or feature id"),
    "search_none": ("Không tìm thấy", "Nothing found"),
    "details": ("Chi tiết", "Details"),
    "close": ("Đóng", "Close"),
    "severity": ("Mức độ", "Severity"),
    "status": ("Trạng thái", "Status"),
    "category": ("Loại", "Category"),
    "ward": ("Phường", "Ward"),
    "agency": ("Cơ quan xử lý", "Agency"),
    "occurred": ("Thời điểm", "Occurred"),
    "history": ("Lịch sử", "History"),
    "note": ("Ghi chú", "Note"),
    "acknowledge": ("Tiếp nhận", "Acknowledge"),
    "dispatch": ("Điều động", "Dispatch"),
    "resolve": ("Đã xử lý", "Resolve"),
    "dismiss": ("Bỏ qua", "Dismiss"),
    "transition_failed": ("Không thực hiện được", "Could not change the status"),
    "status_new": ("Mới", "New"),
    "status_acknowledged": ("Đã tiếp nhận", "Acknowledged"),
    "status_dispatched": ("Đã điều động", "Dispatched"),
    "status_resolved": ("Đã xử lý", "Resolved"),
    "status_dismissed": ("Đã bỏ qua", "Dismissed"),
    "feature_active": ("Hoạt động", "Active"),
    "feature_offline": ("Mất kết nối", "Offline"),
    "readings": ("Số đo gần đây", "Recent readings"),
    "no_readings": ("Chưa có số đo", "No readings yet"),
    "last_seen": ("Lần cuối", "Last seen"),
    "live_on": ("Trực tuyến", "Live"),
    "live_off": ("Mất kết nối trực tuyến", "Live connection lost"),
    "live_none": ("Không có dữ liệu trực tuyến (cần đăng nhập)", "No live data (log in)"),
    "attribution": ("Nguồn dữ liệu", "Data sources"),
    "language": ("Ngôn ngữ", "Language"),
    "planner": ("Công cụ quy hoạch", "Planner tools"),
    "wall": ("Chế độ màn hình lớn", "Video-wall mode"),
    "time": ("Thời gian", "Time"),
    "features": ("đối tượng", "features"),
    "snapshot": ("Ảnh mới nhất", "Latest snapshot"),
    "photos": ("Ảnh", "Photos"),
    "open_data": ("Mở dữ liệu đầy đủ", "Open full data"),
    "draw_polygon": ("Vẽ đa giác", "Draw polygon"),
    "draw_radius": ("Vẽ bán kính", "Draw radius"),
    "draw_hint_polygon": ("Bấm các đỉnh trên bản đồ, bấm đúp để kết thúc", "Click the corners, double-click to finish"),
    "draw_hint_radius": ("Bấm tâm rồi bấm điểm trên đường tròn", "Click the centre, then a point on the circle"),
    "clear": ("Xoá", "Clear"),
    "count_in_selection": ("Số đối tượng trong vùng chọn", "Features in the selection"),
    "choropleth": ("Bản đồ phân tầng theo phường", "Ward choropleth"),
    "none": ("Không", "None"),
    "export": ("Xuất dữ liệu", "Export"),
    "replay": ("Phát lại 24 giờ", "Replay 24 h"),
    "now": ("Hiện tại", "Now"),
    "kpi_open": ("Cảnh báo mở", "Open alerts"),
    "kpi_critical": ("Nghiêm trọng", "Critical"),
    "kpi_devices": ("Thiết bị trực tuyến", "Devices online"),
    "kpi_offline": ("Thiết bị mất kết nối", "Devices offline"),
    "exit_wall": ("Thoát màn hình lớn", "Leave wall mode"),
    "save_view": ("Lưu góc nhìn này cho màn hình lớn", "Save this view for the video wall"),
    "loading": ("Đang tải…", "Loading…"),
    "error": ("Lỗi", "Error"),
}


def catalogue(lang: str) -> dict[str, str]:
    """The strings of ``lang`` (``vi`` for anything but English)."""
    column = 1 if lang.startswith("en") else 0
    return {key: pair[column] for key, pair in STRINGS.items()}
