# SPDX-License-Identifier: AGPL-3.0-or-later
"""The citizen form in a real browser (Debian's Chromium): pick the place on the offline map or from
the phone's location, attach a photo, file; the public results map shows reports. No request leaves
the server."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.reports.conftest import inside, photo_with_exif, ward

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_page(live):
    assert CHROMIUM.exists(), "Debian's chromium is required (apt-get install chromium)"
    outside: list[str] = []
    lon, lat = inside(ward())   # before Playwright: its event loop forbids ORM calls in this thread
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(geolocation={"longitude": lon, "latitude": lat}, permissions=["geolocation"],
                                      viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page = context.new_page()

        def guard(route):
            if route.request.url.startswith(live):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", guard)
        yield page, live, (lon, lat), outside
        browser.close()
    assert outside == [], f"requests left the server: {outside}"


def test_citizen_picks_the_place_on_the_map_attaches_a_photo_and_files(browser_page, tmp_path):
    page, live, (lon, lat), _ = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live}/reports/new/")
    page.wait_for_selector("#map canvas", timeout=30_000)
    page.wait_for_function("window.reportMap && window.reportMap.getLayers().item(0).getSource().getFeatures().length"
                           " > 0", timeout=30_000)   # ward outlines came from our own layers API
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert page.input_value("#lon") and page.input_value("#lat")
    page.click("#locate")                                       # the phone's location wins
    page.wait_for_function(f"Math.abs(Number(document.getElementById('lon').value) - {lon}) < 1e-5")
    page.select_option("#category", "road_damage")
    page.fill("textarea[name=description]", "Ổ gà lớn giữa đường")
    photo = tmp_path / "o-ga.jpg"
    photo.write_bytes(photo_with_exif())
    page.set_input_files("#media", str(photo))
    page.check("#anonymous")
    assert page.locator("#contact-fields").is_hidden()
    page.click("button.primary")
    page.wait_for_selector("#token", timeout=30_000)
    assert "Đã tiếp nhận phản ánh" in page.content()
    assert errors == []
    page.goto(f"{live}/reports/?category=road_damage")
    page.wait_for_function("window.resultsMap && window.resultsMap.getLayers().getArray().at(-1).getSource()"
                           ".getFeatures().length > 0", timeout=30_000)


def test_missing_place_shows_a_clear_error_in_the_browser(browser_page):
    page, live, _, _ = browser_page
    page.goto(f"{live}/reports/new/")
    page.select_option("#category", "littering")
    page.fill("textarea[name=description]", "Rác")
    page.check("#anonymous")
    page.click("button.primary")
    page.wait_for_selector("#form-error")
    assert "thiếu vị trí" in page.inner_text("#form-error")
