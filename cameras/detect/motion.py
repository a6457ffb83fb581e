# SPDX-License-Identifier: AGPL-3.0-or-later
"""Motion-gated detection: background subtraction and contours on a downscaled frame.

MOG2 at 1280×720 runs at about 42 frames/s on one core here
(stack-notes); on a 320-pixel-wide frame it is some 15× cheaper, and a car
is still dozens of pixels. Boxes are scaled back to full resolution.

Only analysed frames feed the background model (feeding every decoded frame
would cost as much as analysing it); its history is counted in analysed
frames so that it spans about 20 s of scene at any analysis rate.
"""
from __future__ import annotations

import cv2
import numpy as np

from cameras.config import Analytics
from cameras.detect.base import Detection, Detector

# A frame where most pixels changed is a lighting change (auto exposure, clouds), not traffic.
GLOBAL_CHANGE_FRACTION = 0.45


class MotionDetector(Detector):
    name = "motion"

    def __init__(self, cfg: Analytics) -> None:
        super().__init__(cfg)
        self.reset()
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def reset(self) -> None:
        # History in analysed frames ≈ 60 s of scene, whatever the analysis rate. A stopped car becomes
        # "background" once the old road colour's weight, decaying by (1 − 1/history) a frame, falls
        # below the background ratio: with 0.5 that is history·ln 2 frames ≈ 40 s, long enough for the
        # no-stopping rule (OpenCV's default 0.9 would absorb it in about 6 s).
        self._mog = cv2.createBackgroundSubtractorMOG2(history=max(50, int(self.cfg.analysis_fps * 60)),
                                                       varThreshold=32, detectShadows=True)
        self._mog.setBackgroundRatio(0.5)
        self._frames = 0

    def detect(self, frame: np.ndarray) -> list[Detection]:
        height, width = frame.shape[:2]
        scale = min(1.0, self.cfg.motion_width / width)
        small = cv2.resize(frame, (round(width * scale), round(height * scale)),
                           interpolation=cv2.INTER_AREA) if scale < 1.0 else frame
        small = cv2.GaussianBlur(small, (3, 3), 0)
        mask = self._mog.apply(small)
        self._frames += 1
        if self._frames < 5:
            return []   # the model has not seen the scene yet: everything is "foreground"
        # 255 = foreground, 127 = shadow: shadows are not objects.
        _, mask = cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)
        if cv2.countNonZero(mask) > GLOBAL_CHANGE_FRACTION * mask.size:
            return []
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = self.cfg.min_area_px * scale * scale
        inv = 1.0 / scale
        found = []
        for contour in contours:
            if cv2.contourArea(contour) < min_area:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            found.append(Detection(box=(x * inv, y * inv, w * inv, h * inv), label=self.cfg.labels[0]))
        return found
