# SPDX-License-Identifier: AGPL-3.0-or-later
"""Detection, tracking, counting and zone rules on synthetic frames (moving bright boxes)."""
from __future__ import annotations

import numpy as np

from cameras.analysis import CameraAnalysis
from cameras.config import CameraConfig, Congestion
from cameras.count import CongestionMonitor
from cameras.detect import Detection, Detector, registered
from tests.cameras.support import frame_with, scene

FPS = 25.0


def config(**extra) -> CameraConfig:
    return CameraConfig.model_validate({
        "frame_size": [320, 240],
        "lines": [{"name": "mid", "points": [[0, 120], [320, 120]], "forward": "down", "backward": "up"}],
        "analytics": {"min_area_px": 100, "analysis_fps": 25},
        **extra})


def play(analysis: CameraAnalysis, positions: list[list[tuple[int, int, int, int]]]):
    background = scene()
    results = []
    for i, boxes in enumerate(positions):
        result = analysis.offer(frame_with(background, boxes, i), i / FPS)
        if result is not None:
            results.append(result)
    results.append(analysis.finish(len(positions) / FPS))
    return results


def moving_down(start_y: int = -30, step: int = 6, frames: int = 60, x: int = 140):
    return [[]] * 10 + [[(x, start_y + step * i, 30, 20)] for i in range(frames)] + [[]] * 20


def test_a_box_moving_down_is_one_track_with_a_stable_id_counted_once_downwards():
    analysis = CameraAnalysis(config())
    results = play(analysis, moving_down())
    ids = {tr.id for r in results for tr in r.tracks}
    assert len(ids) == 1
    assert analysis.lines.totals == {"mid": {"down": 1, "up": 0}}
    assert sum(len(r.ended) for r in results) == 1


def test_a_box_moving_up_is_counted_in_the_other_direction():
    up = [[(140, 250 - 6 * i, 30, 20)] for i in range(60)]
    analysis = CameraAnalysis(config())
    play(analysis, [[]] * 10 + up + [[]] * 20)
    assert analysis.lines.totals == {"mid": {"down": 0, "up": 1}}


def test_two_boxes_side_by_side_keep_their_own_ids_and_both_count():
    both = [[(60, -30 + 6 * i, 30, 20), (220, -40 + 6 * i, 30, 20)] for i in range(60)]
    analysis = CameraAnalysis(config())
    results = play(analysis, [[]] * 10 + both + [[]] * 20)
    assert len({tr.id for r in results for tr in r.tracks}) == 2
    assert analysis.lines.totals["mid"]["down"] == 2


def test_half_rate_analysis_counts_the_same_as_full_rate():
    full, half = CameraAnalysis(config()), CameraAnalysis(config(), analysis_fps=12.5)
    play(full, moving_down(step=8))
    play(half, moving_down(step=8))
    assert full.lines.totals == half.lines.totals == {"mid": {"down": 1, "up": 0}}
    assert half.frames_analysed < 0.55 * full.frames_analysed


def test_going_against_the_lawful_direction_of_a_zone_is_a_wrong_way_episode_that_ends_with_the_track():
    zones = [{"name": "all", "polygon": [[0, 0], [320, 0], [320, 240], [0, 240]], "rule": "wrong_way",
              "expected_direction": [0, -1]}]
    results = play(CameraAnalysis(config(zones=zones)), moving_down())
    states = [(v.state, v.zone, v.rule) for r in results for v in r.violations]
    assert states == [("start", "all", "wrong_way"), ("end", "all", "wrong_way")]


def test_travelling_the_lawful_way_raises_no_wrong_way():
    zones = [{"name": "all", "polygon": [[0, 0], [320, 0], [320, 240], [0, 240]], "rule": "wrong_way",
              "expected_direction": [0, 1]}]
    results = play(CameraAnalysis(config(zones=zones)), moving_down())
    assert [v for r in results for v in r.violations] == []


def test_stopping_longer_than_allowed_in_a_no_stopping_zone_raises_one_episode():
    zones = [{"name": "shoulder", "polygon": [[100, 100], [220, 100], [220, 200], [100, 200]],
              "rule": "no_stopping", "max_stop_s": 1.0}]
    arrive = [[(140, -30 + 6 * i, 30, 20)] for i in range(25)]          # ends at y = 114
    park = [[(140, 114, 30, 20)]] * 100                                  # 4 s still
    leave = [[(140, 114 + 8 * i, 30, 20)] for i in range(1, 20)]
    results = play(CameraAnalysis(config(zones=zones)), [[]] * 30 + arrive + park + leave + [[]] * 20)
    states = [(v.state, v.rule) for r in results for v in r.violations]
    assert states == [("start", "no_stopping"), ("end", "no_stopping")]
    start = next(v for r in results for v in r.violations if v.state == "start")
    assert start.detail["stopped_s"] >= 1.0


def test_congestion_opens_when_occupancy_stays_high_and_ends_after_it_clears():
    monitor = CongestionMonitor(Congestion(min_duration_s=5, clear_duration_s=5))
    lane = lambda occ, speed=None: {"l": {"occupancy": occ, "flow_vph": 0, "speed_kmh": speed, "vehicles": 0}}
    changes = [monitor.update(lane(0.5), t) for t in range(0, 7)]
    assert [c.state for c in changes if c] == ["start"]
    assert monitor.update(lane(0.7), 8).state == "update"                # worse: level 3
    changes = [monitor.update(lane(0.05), t) for t in range(9, 16)]
    ended = [c for c in changes if c]
    assert [(c.state, c.peak) for c in ended] == [("end", 3)]


def test_slow_traffic_counts_as_congested_even_at_moderate_occupancy():
    monitor = CongestionMonitor(Congestion())
    assert monitor.level_of({"l": {"occupancy": 0.2, "speed_kmh": 8.0}}) == 2
    assert monitor.level_of({"l": {"occupancy": 0.2, "speed_kmh": 60.0}}) == 1


class FixedDetector(Detector):
    """Stands in for a DNN: returns one box walking down the frame."""

    name = "fixed"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.i = 0

    def detect(self, frame: np.ndarray) -> list[Detection]:
        self.i += 1
        return [Detection((100, -20 + 7 * self.i, 20, 20), label="car", score=0.9)]


def test_another_detector_plugs_in_by_name_without_changing_the_pipeline():
    with registered("fixed", FixedDetector):
        analysis = CameraAnalysis(config(analytics={"detector": "fixed", "labels": ["car"], "analysis_fps": 25}))
        for i in range(40):
            analysis.offer(scene(), i / FPS)
    assert analysis.lines.totals["mid"]["down"] == 1
    assert {tr.label for tr in analysis.tracker.tracks} == {"car"}
