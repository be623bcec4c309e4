"""Progress while a job runs (issue 26, item 3): each clip is reported as soon as it is
published (the status lists it while the others are being cut), the bar moves smoothly from 0
for a local source (no download: no jump to 40 %), and an ETA appears once it can be estimated.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mediakit import make_video
from tests.worker.helpers import make_input, run
from videojobs_worker.progress import EtaEstimator

pytestmark = pytest.mark.media


def test_clips_are_reported_one_by_one_and_the_bar_starts_at_zero(tmp_path: Path) -> None:
    source = make_video(tmp_path / "src.mp4", duration=8, gop=30)
    worker_input = make_input(str(source), [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)])
    code, _result, reporter = run(worker_input, tmp_path / "out", tmp_path / "scratch")
    assert code == 0
    cutting = [
        p["status"] for p in reporter.patches if p["status"]["progress"]["stage"] == "Cutting"
    ]
    listed = [len(s.get("segments", [])) for s in cutting]
    # every count from 1 to 4 was reported while still cutting (not all four at the end)
    assert sorted(set(listed) - {0}) == [1, 2, 3, 4], listed
    first = next(s for s in cutting if s.get("segments"))
    # the first clip was listed while the others were still being cut (the old runner listed
    # them all once every clip was done: at 100 %)
    assert first["progress"]["percent"] < 90, first["progress"]
    done = [s["progress"]["segmentsDone"] for s in cutting]
    assert done == sorted(done) and done[-1] == 4
    percents = [s["progress"]["percent"] for s in cutting]
    assert percents[0] < 40, percents  # a local file has no download share to skip
    assert percents == sorted(percents)
    assert len(set(percents)) >= 4  # it moves in steps, not 0 then 100


def test_eta_waits_for_enough_work_then_extrapolates() -> None:
    now = [0.0]
    eta = EtaEstimator(lambda: now[0], min_fraction=0.05, min_seconds=2.0)
    now[0] = 1.0
    assert eta.estimate(0.5) is None  # too early
    now[0] = 10.0
    assert eta.estimate(0.01) is None  # too little done
    assert eta.estimate(0.25) == 30  # 10 s for a quarter: 30 s left
    assert eta.estimate(0.5) == 10
    assert eta.estimate(1.0) == 0


def test_download_fraction_uses_speed_and_eta_when_the_size_is_unknown() -> None:
    from videojobs_worker.download import DownloadProgress
    from videojobs_worker.runner import download_fraction

    assert download_fraction(DownloadProgress(250, 1000, None, None)) == 0.25
    # HLS: no size, but 100 B/s for 30 s more after 1000 B: a quarter
    assert download_fraction(DownloadProgress(1000, None, 30.0, 100.0)) == 0.25
    assert download_fraction(DownloadProgress(1000, None, None, None)) == 0.0
    assert download_fraction(DownloadProgress(2000, 1000, None, None)) == 1.0
