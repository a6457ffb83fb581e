# SPDX-License-Identifier: AGPL-3.0-or-later
"""Licence plates: Vietnamese formats, localisation on a drawn plate, watch-list matches through a plugged-in reader."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from cameras import plates
from cameras.plates import WatchList, locate_plates, parse_plate


@pytest.mark.parametrize("text, canonical, kind", [
    ("75A-123.45", "75A-123.45", "car"),
    ("43A-12345", "43A-123.45", "car"),
    ("43A-1234", "43A-1234", "car"),
    ("51LD 123.45", "51LD-123.45", "car"),
    ("29-B1 123.45", "29-B1 123.45", "motorbike"),
    ("75-H1 1234", "75-H1 1234", "motorbike"),
])
def test_vietnamese_plate_formats_are_recognised_and_normalised(text, canonical, kind):
    plate = parse_plate(text)
    assert plate is not None and (plate.canonical, plate.kind) == (canonical, kind)


@pytest.mark.parametrize("text", ["", "HELLO", "7A-123.45", "05A-123.45", "75A-123456", "75-1B 123.45",
                                  "75O-123.45", "29-I1 123.45", "43W-1234"])  # O, I, W never start a series
def test_texts_that_are_not_vietnamese_plates_are_refused(text):
    assert parse_plate(text) is None


def test_the_watch_list_matches_whatever_the_spacing_and_case():
    watch = WatchList(["75A-123.45", "29-B1 123.45", "not a plate"])
    assert watch.match("75a 12345").canonical == "75A-123.45"
    assert watch.match("29B112345") is not None and watch.match("75A-123.46") is None


def plate_image() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    car = np.full((160, 260, 3), 60, np.uint8)
    x, y, w, h = 70, 100, 120, 26
    cv2.rectangle(car, (x, y), (x + w, y + h), (235, 235, 235), -1)
    cv2.putText(car, "75A-12345", (x + 6, y + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (10, 10, 10), 2)
    return car, (x, y, w, h)


def test_a_one_row_plate_is_localised_by_morphology():
    image, (x, y, w, h) = plate_image()
    found = locate_plates(image)
    assert found
    fx, fy, fw, fh = found[0]
    assert abs((fx + fw / 2) - (x + w / 2)) < 15 and abs((fy + fh / 2) - (y + h / 2)) < 10


def test_without_a_reader_regions_come_back_unread(monkeypatch):
    monkeypatch.setattr(plates, "READERS", {})
    image, _ = plate_image()
    [first, *_] = plates.read_plates(image, WatchList(["75A-123.45"]))
    assert first["text"] is None and first["watch_list"] is False


def test_a_plugged_in_reader_turns_a_watch_listed_plate_into_a_match(monkeypatch):
    monkeypatch.setattr(plates, "READERS", {"fake": lambda crop: "75A 123 45"})
    image, _ = plate_image()
    [first, *_] = plates.read_plates(image, WatchList(["75A-123.45"]))
    assert (first["text"], first["valid"], first["watch_list"]) == ("75A-123.45", True, True)
