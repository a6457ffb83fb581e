# SPDX-License-Identifier: AGPL-3.0-or-later
"""Licence-plate reading time per vehicle crop, next to the bare recogniser on the same plates (issue 8).

    .venv/bin/python bench/plates.py                 # 40 reads of each crop
    .venv/bin/python bench/plates.py --reads 100

By hand, not in CI (a benchmark, never a timed test). The crops are those of
``tests/cameras/test_plates_ocr.py``: a Vietnamese one-row car plate and a
two-row motorbike plate drawn on a vehicle pasted into a real frame of the
shared footage, cropped as the tracker's box would be. Measured on one
onnxruntime thread, as the camera worker runs:

- **limit**: the PP-OCRv4 recogniser alone (``TextRecognizer`` from the
  rapidocr-onnxruntime wheel) on the plate rows already cut out — what any
  use of this model pays;
- **ours**: ``cameras.plates.read_plates`` on the whole vehicle crop —
  localise the plate, split the rows, recognise, normalise, validate the
  pattern and check the watch list.

Prints ms per crop (median and p90) and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_support import machine  # noqa: E402

ROWS = (["75A-123.45"], ["29-B1", "123.45"])


def _timed(call, reads: int) -> list[float]:
    out = []
    for _ in range(reads):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=40, help="reads of each crop")
    args = parser.parse_args()

    import cv2

    from cameras.ocr import PaddlePlateReader, split_rows
    from cameras.plates import WatchList, read_plates
    from tests.cameras.plate_images import plate
    from tests.cameras.support import CAR_PARK
    from tests.cameras.test_plates_ocr import vehicle_crop

    print(f"# bench/plates.py — {machine()}")
    watch = WatchList(["75A-123.45", "29-B1 123.45"])
    recogniser = PaddlePlateReader(threads=1)._recogniser()
    print("| plate | ours: read_plates on the vehicle crop, ms p50 / p90 | limit: recogniser on the rows, ms p50 / p90 "
          "| ratio (p50) | read |\n|---|---:|---:|---:|---|")
    for rows, size, at in ((ROWS[0], 110, (300, 160)), (ROWS[1], 80, (420, 200))):
        crop = vehicle_crop(CAR_PARK, rows, size, at)
        gray = cv2.cvtColor(plate(rows, size), cv2.COLOR_BGR2GRAY)
        parts = list(split_rows(gray)) if len(rows) == 2 else [gray]
        bare = [cv2.cvtColor(p, cv2.COLOR_GRAY2BGR) for p in parts]
        found = read_plates(crop, watch)                  # loads the model once
        recogniser(bare)
        ours = _timed(lambda: read_plates(crop, watch), args.reads)
        limit = _timed(lambda: recogniser(bare), args.reads)
        text = next((f["text"] for f in found if f["valid"]), "—")
        p50, q50 = statistics.median(ours), statistics.median(limit)
        p90 = statistics.quantiles(ours, n=10)[-1]
        q90 = statistics.quantiles(limit, n=10)[-1]
        print(f"| {' / '.join(rows)} ({size} px) | {p50:.1f} / {p90:.1f} | {q50:.1f} / {q90:.1f} | "
              f"{p50 / q50:.2f}× | {text} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
