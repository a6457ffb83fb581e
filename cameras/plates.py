# SPDX-License-Identifier: AGPL-3.0-or-later
"""Licence plates: classical localisation, Vietnamese format checks, watch list. No OCR ships.

What is done, offline and without downloads:

- **Localisation** (:func:`locate_plates`): plates are bright, high-contrast
  rectangles full of vertical strokes. Black-hat (dark characters on a
  light plate) → horizontal Sobel → Otsu threshold → closing → contours whose
  aspect ratio fits a one-row plate (≈ 4.7 : 1, 520 × 110 mm) or a two-row
  plate (≈ 1.4 : 1, 280 × 200 mm, motorbikes and many cars).
- **Formats** (:func:`parse_plate`): Vietnamese plates by pattern, e.g. car
  ``75A-123.45`` and ``43A-12345`` (older 4-digit ``43A-1234``), motorbike
  ``29-B1 123.45``.
- **Watch list** (:class:`WatchList`): canonical comparison, so ``75a 12345``
  matches ``75A-123.45``.

What is **not** done: reading the characters. No OCR model that ships
inside a PyPI wheel and reads Vietnamese plates was found to vendor here,
and nothing may be downloaded at run time, so :data:`READERS` is empty and
the worker reports plate *regions* only. A reader (an ONNX OCR on
onnxruntime, say) plugs in with :func:`register_reader`; its text is then
validated by pattern and matched against the camera's watch list.

>>> parse_plate("75A-123.45").canonical, parse_plate("29-B1 123.45").kind, parse_plate("43a 12345").canonical
('75A-123.45', 'motorbike', '43A-123.45')
>>> parse_plate("ABC-123") is None, parse_plate("00A-123.45") is None
(True, True)
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np

# Province/city codes run from 11 to 99 (Circular 24/2023/TT-BCA; 10 and below are not issued).
_CAR = re.compile(r"^(?P<prov>\d{2})(?P<series>[A-Z]{1,2})(?P<num>\d{4,5})$")
_MOTO = re.compile(r"^(?P<prov>\d{2})(?P<series>[A-Z][A-Z0-9])(?P<num>\d{4,5})$")


@dataclass(frozen=True, slots=True)
class Plate:
    canonical: str
    kind: str        # "car" | "motorbike"


def _number(num: str) -> str:
    return f"{num[:3]}.{num[3:]}" if len(num) == 5 else num


def parse_plate(text: str) -> Plate | None:
    """A Vietnamese plate in canonical form, or ``None`` when the text is not one."""
    raw = re.sub(r"[\s.\-]", "", text.upper())
    car, moto = _CAR.match(raw), _MOTO.match(raw)
    # "75A-123456": a separator right after the letter closes a car series; a motorbike series has two.
    letter_then_separator = re.match(r"^\s*\d{2}\s*-?\s*[A-Za-z][\s.\-]", text) is not None
    # "29-B1 …": motorbike plates put a dash after the province code, car plates do not.
    dash_after_province = re.match(r"^\s*\d{2}\s*-", text) is not None
    if moto and (dash_after_province or not car) and not letter_then_separator and moto["series"][1].isdigit():
        if 11 <= int(moto["prov"]) <= 99:
            return Plate(f"{moto['prov']}-{moto['series']} {_number(moto['num'])}", "motorbike")
        return None
    if car and 11 <= int(car["prov"]) <= 99:
        return Plate(f"{car['prov']}{car['series']}-{_number(car['num'])}", "car")
    return None


class WatchList:
    def __init__(self, plates: Iterable[str]) -> None:
        self.plates = {p.canonical for p in map(parse_plate, plates) if p}

    def match(self, text: str) -> Plate | None:
        plate = parse_plate(text)
        return plate if plate and plate.canonical in self.plates else None


def locate_plates(image: np.ndarray, *, min_width: int = 20) -> list[tuple[int, int, int, int]]:
    """Candidate plate boxes ``(x, y, w, h)`` in ``image`` (a vehicle crop or a frame)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    blackhat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (13, 5)))
    grad = np.absolute(cv2.Sobel(blackhat, cv2.CV_32F, 1, 0, ksize=3))
    grad = cv2.normalize(grad, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    grad = cv2.GaussianBlur(grad, (5, 5), 0)
    _, mask = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (17, 5)))
    mask = cv2.erode(mask, None, iterations=1)
    mask = cv2.dilate(mask, None, iterations=2)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    found = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        ratio = w / max(h, 1)
        if w >= min_width and (2.5 <= ratio <= 6.5 or 1.1 <= ratio <= 1.8):
            found.append((x, y, w, h))
    return sorted(found, key=lambda b: -b[2] * b[3])


PlateReader = Callable[[np.ndarray], str | None]
READERS: dict[str, PlateReader] = {}       # empty: no OCR ships (see the module docstring)


def register_reader(name: str, reader: PlateReader) -> None:
    READERS[name] = reader


def read_plates(image: np.ndarray, watch: WatchList) -> list[dict]:
    """Localise, read with any registered reader, validate, match: one dict per candidate region."""
    out = []
    for x, y, w, h in locate_plates(image)[:3]:
        entry: dict = {"box": [x, y, w, h], "text": None, "valid": False, "watch_list": False}
        for reader in READERS.values():
            text = reader(image[y:y + h, x:x + w])
            plate = parse_plate(text) if text else None
            if plate:
                entry.update(text=plate.canonical, valid=True, watch_list=watch.match(plate.canonical) is not None)
                break
        out.append(entry)
    return out


__all__ = ["Plate", "READERS", "WatchList", "locate_plates", "parse_plate", "read_plates", "register_reader"]
