# SPDX-License-Identifier: AGPL-3.0-or-later
"""The pipeline on the real footage, against counts made by hand (docs/cameras.md, "Hand counts").

Highway (bgslibrary video02, 748 frames at 25 fps): every vehicle crossing
the ``right`` line was found by watching contact sheets of every 5th frame
with the line drawn on them, and the frame of each crossing written down:
23 crossings, all going away from the camera (22 motor vehicles and one
cyclist on the shoulder). Car park (Intel sample video, 377 frames at
12.5 fps): 2 cars cross the aisle line going up and 2 going down.
"""
from __future__ import annotations

import pytest

from cameras.analysis import analyse_file
from tests.cameras.support import CAR_PARK, HIGHWAY, fixture_config, require_video

HAND_RIGHT_FRAMES = [22, 65, 78, 105, 165, 188, 255, 260, 302, 352, 388, 422, 447, 467, 480, 497, 516, 518, 535,
                     553, 655, 683, 710]
TOLERANCE = 3            # vehicles, on the total (about ±13 %)
MATCH_WINDOW = 15        # frames (0.6 s) between a hand-counted crossing and the pipeline's


def matched(hand: list[int], got: list[int], window: int) -> int:
    """Hand-counted crossings that have a pipeline crossing within ``window`` frames (each used once)."""
    free, hits = list(got), 0
    for frame in hand:
        best = min(free, key=lambda g: abs(g - frame), default=None)
        if best is not None and abs(best - frame) <= window:
            free.remove(best)
            hits += 1
    return hits


@pytest.fixture(scope="module")
def highway_runs():
    require_video(HIGHWAY)
    cfg = fixture_config("cam-hungvuong-01")
    return {fps: analyse_file(HIGHWAY, cfg, analysis_fps=fps) for fps in (25.0, 12.5)}


@pytest.mark.parametrize("fps", [25.0, 12.5])
def test_highway_right_carriageway_count_is_within_tolerance_of_the_hand_count(highway_runs, fps):
    run = highway_runs[fps]
    assert run.frames_decoded == 748
    assert abs(run.totals["right"]["away"] - len(HAND_RIGHT_FRAMES)) <= TOLERANCE
    assert run.totals["right"]["toward"] == 0          # nobody drives the wrong way in this clip
    frames = [round(c.t * 25) for c in run.crossings if c.line == "right"]
    assert matched(HAND_RIGHT_FRAMES, frames, MATCH_WINDOW) >= 19      # recall ≥ 80 % crossing by crossing


def test_analysing_every_second_frame_changes_the_count_by_at_most_one(highway_runs):
    full, half = highway_runs[25.0], highway_runs[12.5]
    assert half.frames_analysed == 374 and full.frames_analysed == 748
    assert abs(full.totals["right"]["away"] - half.totals["right"]["away"]) <= 1


def test_highway_speeds_through_the_homography_are_motorway_speeds(highway_runs):
    speeds = sorted(c.speed_kmh for c in highway_runs[12.5].crossings if c.line == "right" and c.speed_kmh)
    assert len(speeds) >= 15
    assert 60 <= speeds[len(speeds) // 2] <= 130          # median, km/h


def test_free_flowing_highway_raises_no_congestion_and_no_zone_violation(highway_runs):
    for run in highway_runs.values():
        assert run.congestion == [] and run.violations == []


@pytest.mark.parametrize("fps", [12.5, 6.25])
def test_car_park_counts_match_the_hand_count_exactly(fps):
    run = analyse_file(require_video(CAR_PARK), fixture_config("cam-leduan-01"), analysis_fps=fps)
    assert run.totals == {"aisle": {"down": 2, "up": 2}}
