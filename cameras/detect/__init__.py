# SPDX-License-Identifier: AGPL-3.0-or-later
"""Detectors: frames → boxes. A registry, so a DNN can plug in without touching the rest."""
from cameras.detect.base import (DETECTORS, Detection, Detector, UnknownDetectorError, build_detector, register,
                                 registered)

__all__ = ["DETECTORS", "Detection", "Detector", "UnknownDetectorError", "build_detector", "register", "registered"]
