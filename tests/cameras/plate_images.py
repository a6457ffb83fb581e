# SPDX-License-Identifier: AGPL-3.0-or-later
"""Vietnamese plates drawn with OpenCV (white plate, black characters, one or two rows) on real frames."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ONE_ROW = (520, 110)        # mm: a long car plate
TWO_ROWS = (280, 200)       # mm: motorbikes and many cars


def plate(rows: list[str], width_px: int) -> np.ndarray:
    """A plate ``width_px`` wide in its real proportions, each row's text centred in a thick sans font."""
    mm_w, mm_h = ONE_ROW if len(rows) == 1 else TWO_ROWS
    scale = 4                                   # draw large, then shrink: anti-aliased like a camera's view
    w, h = width_px * scale, round(width_px * mm_h / mm_w) * scale
    img = np.full((h, w, 3), 238, np.uint8)
    cv2.rectangle(img, (3 * scale, 3 * scale), (w - 3 * scale, h - 3 * scale), (20, 20, 20), 2 * scale)
    for i, text in enumerate(rows):
        band_top, band_h = h * i // len(rows), h // len(rows)
        font_scale = 1.0
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        font_scale = min(0.82 * w / tw, 0.6 * band_h / th)
        thick = max(1, round(font_scale * 2.2))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        org = ((w - tw) // 2, band_top + (band_h + th) // 2)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (15, 15, 15), thick, cv2.LINE_AA)
    return cv2.resize(img, (w // scale, h // scale), interpolation=cv2.INTER_AREA)


def real_frame(video: Path, index: int = 0) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
    finally:
        cap.release()
    assert ok, f"cannot read frame {index} of {video}"
    return frame


def paste(frame: np.ndarray, image: np.ndarray, x: int, y: int) -> np.ndarray:
    out = frame.copy()
    h, w = image.shape[:2]
    out[y:y + h, x:x + w] = image
    return out


def vehicle(plate_img: np.ndarray, width: int = 0, height: int = 0) -> np.ndarray:
    """A dark-red car's rear: a body with a window band and the plate low in the middle."""
    ph, pw = plate_img.shape[:2]
    width, height = width or pw * 2, height or ph * 3 + 40
    body = np.zeros((height, width, 3), np.uint8)
    body[:] = (40, 40, 150)
    body[10:height // 3] = (70, 60, 50)                                   # rear window
    x, y = (width - pw) // 2, height - ph - 12
    body[y:y + ph, x:x + pw] = plate_img
    return body


def composed_video(path: Path, background: np.ndarray, car: np.ndarray, *, fps: float = 25.0,
                   still_s: float = 1.5, drive_s: float = 3.0) -> Path:
    """A clip of ``background`` alone for ``still_s``, then ``car`` driving down its middle, then empty again.

    MJPG at high quality keeps the plate's strokes (mp4v's blocks smear a 100-px plate).
    """
    h, w = background.shape[:2]
    ch, cw = car.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    try:
        for _ in range(int(still_s * fps)):
            writer.write(background)
        steps = int(drive_s * fps)
        x = (w - cw) // 2
        for i in range(steps):
            y = round(-ch + (h + ch) * i / (steps - 1))
            frame = background.copy()
            top, bottom = max(0, y), min(h, y + ch)
            if bottom > top:
                frame[top:bottom, x:x + cw] = car[top - y:bottom - y]
            writer.write(frame)
        for _ in range(int(still_s * fps)):
            writer.write(background)
    finally:
        writer.release()
    return path


SERIES_LETTERS = "ABCDEFGHKLMNPSTUVXYZ"      # letters seen on Vietnamese plates (no I, J, O, Q, R, W)


def random_plate(rng) -> tuple[list[str], str]:
    """Rows to draw and the canonical text: a one-row car plate or a two-row motorbike plate, 5-digit number."""
    prov, num = rng.randint(11, 99), "".join(rng.choice("0123456789") for _ in range(5))
    number = f"{num[:3]}.{num[3:]}"
    if rng.random() < 0.5:
        text = f"{prov}{rng.choice(SERIES_LETTERS)}-{number}"
        return [text], text
    top = f"{prov}-{rng.choice(SERIES_LETTERS)}{rng.randint(1, 9)}"
    return [top, number], f"{top} {number}"


def degrade(image: np.ndarray, angle_deg: float, blur_sigma: float, jpeg_quality: int) -> np.ndarray:
    """A camera's view of a drawn image: slightly turned, out of focus, JPEG-compressed."""
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0)
    image = cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if blur_sigma:
        image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
