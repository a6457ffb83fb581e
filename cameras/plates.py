# SPDX-License-Identifier: AGPL-3.0-or-later
"""Licence plates: classical localisation, offline reading, Vietnamese format checks, watch list.

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

- **Reading** (:data:`READERS`): a reader turns a plate crop into raw text.
  The default is :class:`cameras.ocr.PaddlePlateReader` (PaddleOCR's
  PP-OCRv4 recogniser shipped inside the ``rapidocr-onnxruntime`` wheel, on
  onnxruntime), registered when that package is importable; without it the
  registry is empty and plates come back as regions only. Others plug in
  with :func:`register_reader`.
- **Normalising** (:func:`normalise_reading`): the raw text is fitted to the
  Vietnamese layouts, fixing the O/0, I/1, B/8 confusions only where the
  layout demands a digit or a letter, then checked by :func:`parse_plate`.

>>> parse_plate("75A-123.45").canonical, parse_plate("29-B1 123.45").kind, parse_plate("43a 12345").canonical
('75A-123.45', 'motorbike', '43A-123.45')
>>> normalise_reading("75A-I23.45"), normalise_reading("29-81 I23.45"), normalise_reading("75A-12")
('75A-123.45', '29-B1 123.45', None)
>>> parse_plate("ABC-123") is None, parse_plate("00A-123.45") is None, parse_plate("75O-123.45") is None
(True, True, True)
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np

logger = logging.getLogger(__name__)

# Province/city codes run from 11 to 99 (Circular 24/2023/TT-BCA; 10 and below are not issued).
# A series starts with one of the issued letters: never I, J, O, Q or W (they read as 1, 0 …).
_SERIES = "[A-HK-NPR-VX-Z]"
_CAR = re.compile(rf"^(?P<prov>\d{{2}})(?P<series>{_SERIES}[A-Z]?)(?P<num>\d{{4,5}})$")
_MOTO = re.compile(rf"^(?P<prov>\d{{2}})(?P<series>{_SERIES}[A-Z0-9])(?P<num>\d{{4,5}})$")


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


# Confusions a recogniser makes between look-alike glyphs, fixed only where the layout demands the other kind.
_TO_DIGIT = {"O": "0", "I": "1", "B": "8"}
_TO_LETTER = {v: k for k, v in _TO_DIGIT.items()}
# (kind, series layout, province/series lengths before the first break a reading may show): L letter, D digit.
_LAYOUTS = (("car", "L", {3}), ("car", "LL", {4}), ("motorbike", "LD", {2, 4}))


def _fit(raw: str, layout: str) -> tuple[str, int] | None:
    """``raw`` with look-alikes fixed to ``layout`` (``D``/``L`` per character) and the number of fixes."""
    out, fixes = [], 0
    for char, want in zip(raw, layout, strict=True):
        wrong_kind = char.isalpha() if want == "D" else char.isdigit()
        if wrong_kind:
            char = (_TO_DIGIT if want == "D" else _TO_LETTER).get(char, "")
            if not char:
                return None
            fixes += 1
        out.append(char)
    return "".join(out), fixes


def normalise_reading(text: str) -> str | None:
    """A recogniser's raw text as a canonical Vietnamese plate, or ``None`` when no layout fits it.

    Every layout of the right length is tried (car ``DDL``/``DDLL`` + 4–5 digits, motorbike ``DDLD`` +
    4–5 digits; 5 when the reading shows the dot of ``123.45``). The reading's first break (``75A-…``, ``29-B1 …``, a row break) is the strongest clue, so a
    layout whose province/series length agrees with it wins, then the one needing fewest look-alike fixes,
    then car before motorbike.
    """
    upper = text.upper().strip()
    raw = re.sub(r"[^0-9A-Z]", "", upper)
    first_break = re.match(r"^[0-9A-Z]*", upper).end()
    best: tuple[tuple[int, int, int], str] | None = None
    numbers = (5,) if "." in upper else (5, 4)      # the dot is only printed in a 5-digit number, "123.45"
    for order, (kind, series, heads) in enumerate(_LAYOUTS):
        for digits in numbers:
            fitted = _fit(raw, "DD" + series + "D" * digits) if len(raw) == 2 + len(series) + digits else None
            if fitted is None:
                continue
            value, fixes = fitted
            prov, ser, num = value[:2], value[2:2 + len(series)], value[2 + len(series):]
            candidate = f"{prov}{ser}-{num}" if kind == "car" else f"{prov}-{ser} {num}"
            plate = parse_plate(candidate)
            key = (0 if first_break in heads else 1, fixes, order)
            if plate and plate.kind == kind and (best is None or key < best[0]):
                best = (key, plate.canonical)
    return best[1] if best else None


PlateReader = Callable[[np.ndarray], str | None]
READERS: dict[str, PlateReader] = {}       # the default reader is registered below when its wheel is installed


def register_reader(name: str, reader: PlateReader) -> None:
    READERS[name] = reader


def _register_default_reader() -> None:
    """PaddleOCR's recogniser from the rapidocr wheel when importable; otherwise regions only, said once."""
    from cameras import ocr

    if ocr.available():
        READERS.setdefault("paddleocr", ocr.PaddlePlateReader())
    else:
        logger.warning("plates: no reader (rapidocr-onnxruntime/onnxruntime not installed, see scripts/deps.sh); "
                       "plate regions are found but not read")


_register_default_reader()


LOCATE_WIDTH = 240        # px: vehicle crops wider than this are localised on a shrunk copy


def _padded(image: np.ndarray, box: tuple[int, int, int, int], pad: float = 0.08) -> np.ndarray:
    """The box grown a little: morphology boxes hug the strokes and recognisers want a margin."""
    x, y, w, h = box
    dx, dy = int(w * pad) + 1, int(h * pad) + 1
    return image[max(0, y - dy):y + h + dy, max(0, x - dx):x + w + dx]


def _locate_scaled(image: np.ndarray, width: int = LOCATE_WIDTH) -> list[tuple[int, int, int, int]]:
    """Plate boxes found on a copy at most ``width`` wide, in ``image``'s pixels.

    The morphology's kernels suit characters a few pixels wide; a large vehicle crop is shrunk so its
    plate's strokes are that size, and the box is read at full resolution.
    """
    scale = min(1.0, width / max(image.shape[1], 1))
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return [tuple(round(v / scale) for v in box) for box in locate_plates(small)]


def read_plates(image: np.ndarray, watch: WatchList, *, regions: int = 3) -> list[dict]:
    """Localise, read with the registered readers, validate, match: one dict per candidate region.

    Reading stops at the first valid plate: a vehicle carries one, and each read costs milliseconds.
    """
    out, found = [], False
    for box in _locate_scaled(image)[:regions]:
        entry: dict = {"box": list(box), "text": None, "raw": None, "valid": False, "watch_list": False}
        for reader in ([] if found else READERS.values()):
            raw = reader(_padded(image, box))
            text = normalise_reading(raw) if raw else None
            entry["raw"] = entry["raw"] or raw
            if text:
                entry.update(text=text, valid=True, watch_list=watch.match(text) is not None)
                found = True
                break
        out.append(entry)
    return out


__all__ = ["Plate", "READERS", "WatchList", "locate_plates", "normalise_reading", "parse_plate", "read_plates",
           "register_reader"]
