# SPDX-License-Identifier: AGPL-3.0-or-later
"""Offline plate reading with PaddleOCR's PP-OCRv4 recogniser, as shipped inside the rapidocr wheel.

Why this model: ``rapidocr-onnxruntime`` (Apache-2.0) carries PaddleOCR's
PP-OCRv4 text *recognition* network (``ch_PP-OCRv4_rec_infer.onnx``, 10.9 MB,
Apache-2.0, © PaddlePaddle authors) inside its wheel and runs it on
onnxruntime, so nothing is downloaded at run time. Its alphabet covers the
Latin capitals, digits, ``-`` and ``.`` a Vietnamese plate uses.

Only the recogniser runs: :func:`cameras.plates.locate_plates` already gives
a tight plate box, so the text *detector* (another 4.7 MB network and a
slower pass) adds nothing. A two-row plate (motorbikes, many cars; about
1.4 : 1) is cut at the emptiest row near its middle and both rows are read
in one batch; a one-row plate (about 4.7 : 1) is read whole.

The session is built on first use (or by :meth:`PaddlePlateReader.warm`, which the worker calls when
it starts a camera with plates enabled), one intra-op thread (the worker runs one
process per core). The reader returns the raw text of the rows joined by a
space; :func:`cameras.plates.read_plates` normalises and validates it.

The package is installed ``--no-deps`` by ``scripts/deps.sh`` (its metadata
asks for ``opencv-python``, which would overwrite our headless ``cv2``); the
modules it imports on this path (onnxruntime, pyclipper, PyYAML, Shapely,
Pillow) are in ``pyproject.toml``.
"""
from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

PACKAGE = "rapidocr_onnxruntime"
MIN_SCORE = 0.5           # mean CTC confidence below this: not a reading
TWO_ROW_RATIO = 2.5       # width / height under this: a two-row plate


def available() -> bool:
    """Whether the wheel (and onnxruntime) is importable, without importing either."""
    return all(importlib.util.find_spec(name) is not None for name in (PACKAGE, "onnxruntime"))


def split_rows(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A two-row plate cut at the row with the fewest dark pixels in its middle third."""
    _, dark = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    h, w = dark.shape
    margin = max(1, w // 12)                        # ignore the plate's frame at the sides
    profile = dark[:, margin:w - margin].sum(axis=1)
    lo, hi = h // 3, max(h // 3 + 1, 2 * h // 3)
    cut = lo + int(np.argmin(profile[lo:hi]))
    return gray[:cut], gray[cut:]


class PaddlePlateReader:
    """A :data:`cameras.plates.PlateReader`: plate crop → raw text (rows joined by a space) or ``None``."""

    def __init__(self, threads: int = 1, min_score: float = MIN_SCORE) -> None:
        self.threads, self.min_score = threads, min_score
        self._rec = None
        self._lock = threading.Lock()

    def _recogniser(self):
        with self._lock:
            if self._rec is None:
                from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer
                from rapidocr_onnxruntime.utils import read_yaml

                root = Path(importlib.util.find_spec(PACKAGE).origin).parent
                cfg = dict(read_yaml(str(root / "config.yaml"))["Rec"])
                cfg.update(model_path=str(root / cfg["model_path"]), intra_op_num_threads=self.threads,
                           inter_op_num_threads=1)
                self._rec = TextRecognizer(cfg)
                logger.info("plate reader: PP-OCRv4 recogniser loaded from %s", cfg["model_path"])
            return self._rec

    def warm(self) -> None:
        """Build the session now (≈ 0.5 s) so the first vehicle does not stall every camera of the process."""
        self._recogniser()

    def __call__(self, crop: np.ndarray) -> str | None:
        if crop is None or crop.size == 0 or min(crop.shape[:2]) < 8:
            return None
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
        h, w = gray.shape
        rows = list(split_rows(gray)) if w / h < TWO_ROW_RATIO else [gray]
        rows = [cv2.cvtColor(r, cv2.COLOR_GRAY2BGR) for r in rows if r.shape[0] >= 4]
        if not rows:
            return None
        results, _ = self._recogniser()(rows)
        if any(score < self.min_score or not text.strip() for text, score in results):
            return None
        return " ".join(text.strip() for text, _ in results)


__all__ = ["PaddlePlateReader", "available", "split_rows"]
