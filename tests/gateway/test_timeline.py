"""The plan preview and the job page's timeline in a real browser (Debian's chromium), on the
sample that ``videojobs demo`` generates (README's first command; no network): the user moves
one boundary onto a cue, renames one clip, drops one point, runs, and gets the clips as
adjusted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import API, TRANSCRIPT, Gateway, start_local
from tests.gateway.test_console import ARGS, CHROMIUM, _browser_env
from tests.httpserver import MediaServer

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
"""Screenshots for docs/gateway.md, refreshed only with VIDEOJOBS_UPDATE_SCREENSHOTS=1."""

FRAME = 1 / 30  # the demo sample is 30 fps

POINTS = [
    {"knowledge_id": "transcripts", "title": "From transcript to clips", "start_time": 3,
     "end_time": 9},
    {"knowledge_id": "aside", "title": "An aside", "start_time": 7, "end_time": 8},
    {"knowledge_id": "precision", "title": "Precision modes",
     "quote": "the precision modes: copy, accurate and smart"},
    {"knowledge_id": "extras", "title": "Thumbnails and subtitles", "start_time": 15.5,
     "end_time": 18},
]  # fmt: skip
"""The demo's cues: 0-3, 3-6.5, 6.5-9, 9-12.5, 12.5-15.5, 15.5-18, 18-20. Planned: 3-9
(``aside``, snapped to 6.5-9, is merged into it), 9-15.5 (the quote's cue), 15.5-18."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MediaServer, str]]:
    """The demo's sample video over loopback HTTP, and its WebVTT transcript."""
    if not Path(CHROMIUM).exists() or shutil.which("ffmpeg") is None:
        pytest.fail("the timeline test needs /usr/bin/chromium and ffmpeg")
    import yaml

    from videojobs_worker.local import make_demo_inputs

    job = make_demo_inputs(tmp_path_factory.mktemp("demo"))
    vtt = yaml.safe_load(job.read_text())["spec"]["transcript"]["inline"]
    with MediaServer(job.parent) as srv:
        yield srv, vtt


def _shot(page: Any, name: str, tmp_path: Path) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # a real picture of the page
    if os.environ.get("VIDEOJOBS_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(exist_ok=True)
        # a 64-colour palette keeps the PNG small (the pages are flat colours)
        palette = "split[a][b];[a]palettegen=max_colors=64[p];[b][p]paletteuse=dither=none"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(shot), "-vf", palette,
             str(DOCS_IMG / name)],
            check=True,
        )  # fmt: skip


def _drag_to_cue(page: Any, handle: str, cue: int) -> None:
    """Drag a boundary handle to just inside a cue's start (it snaps to that edge)."""
    page.locator(handle).scroll_into_view_if_needed()
    box = page.locator(handle).bounding_box()
    target = page.locator(f".tl-cue[data-cue='{cue}']").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(target["x"] + 3, target["y"] + 5, steps=8)
    page.mouse.up()


def _preview(page: Any, gw: Gateway, url: str, vtt: str, points: str | None) -> None:
    page.goto(gw.server.url("/console/plan"))
    page.fill("#video_url", url)
    page.fill("#transcript", vtt)
    if points is None:
        page.check("#auto")
        page.fill("#min_duration", "10")
        page.fill("#max_duration", "20")
    else:
        page.fill("#knowledge_points", points)
    page.select_option("#precision", "accurate")
    page.click("#preview_button")
    page.wait_for_selector(".tl-band")


def _adjust(page: Any) -> None:
    """Check the preview, then: the 3-9 | 9-15.5 boundary onto cue 3's start (6.5), clip 2
    renamed, the ``extras`` point dropped."""
    bands = page.locator(".tl-band")
    assert bands.count() == 3
    assert page.locator(".tl-cue").count() == 7
    assert page.locator("tr[data-point='spec.knowledgePoints[1]'] .fate").text_content() == "merged"
    assert "merged into" in (page.locator("tr[data-point='spec.knowledgePoints[1]'] .notes")
                             .text_content() or "")  # fmt: skip
    assert page.locator(".tl-point.fate-merged").count() == 1
    _drag_to_cue(page, ".tl-handle[data-edge='1|2']", 3)
    page.wait_for_function(
        "document.querySelector('#clips_table tr[data-clip=\"1\"] .end').textContent === '0:06.5'"
    )
    assert page.locator("#clips_table tr[data-clip='2'] .start").text_content() == "0:06.5"
    page.fill("#clips_table input[data-clip='2']", "Cutting precision")
    assert "Cutting precision" in (page.locator(".tl-band[data-clip='2']").text_content() or "")
    page.click("button.drop[data-point='spec.knowledgePoints[3]']")
    assert page.locator(".tl-band").count() == 2


def test_plan_preview_adjust_run_and_follow(demo: tuple[MediaServer, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    srv, vtt = demo
    gw = start_local(tmp_path / "data", concurrency=1)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=ARGS, env=_browser_env(tmp_path)
            )
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                _preview(page, gw, srv.url("sample.mp4"), vtt, json.dumps(POINTS))
                _adjust(page)
                _shot(page, "console-plan.png", tmp_path)
                page.click("#run_button")
                page.wait_for_url("**/console/jobs/*")
                job_id = page.url.rsplit("/", 1)[1]
                _follow(page, gw, job_id, tmp_path)
            finally:
                browser.close()
    finally:
        gw.client.close()
        gw.server.stop()


def _follow(page: Any, gw: Gateway, job_id: str, tmp_path: Path) -> None:
    """The job page: bands as planned turn done, a cue click plays; /results as adjusted."""
    page.wait_for_selector(".tl-band")
    page.wait_for_function(
        "document.getElementById('status').textContent === 'completed'", timeout=180_000
    )
    page.wait_for_function("document.querySelectorAll('.tl-band.done').length === 2")
    assert page.locator(".tl-band[data-clip='2'] .tl-title").text_content() == (
        "2. Cutting precision"
    )
    page.evaluate("document.getElementById('player').muted = true")
    page.click(".tl-cue[data-cue='4']")  # 9-12.5: inside clip 2 (6.5-15.5), 2.5 s into it
    page.wait_for_function(
        "(() => { const p = document.getElementById('player');"
        " return !p.hidden && p.currentTime > 2.6; })()",
        timeout=30_000,
    )
    page.evaluate("document.getElementById('player').pause()")
    assert "clip 2. Cutting precision" in (page.locator("#playing").text_content() or "")
    _shot(page, "console-job.png", tmp_path)
    res = gw.client.get(f"{API}/results/{job_id}").json()
    got = [(s["title"], s["start"], s["end"]) for s in res["segments"]]
    assert [g[0] for g in got] == ["From transcript to clips", "Cutting precision"]
    for (_, start, end), (want_start, want_end) in zip(got, [(3, 6.5), (6.5, 15.5)], strict=True):
        assert abs(start - want_start) <= FRAME and abs(end - want_end) <= FRAME, got
    names = [f["name"] for f in res["segments"][1]["files"] if f["kind"] == "video"]
    assert names and all("cutting-precision" in n for n in names), names
    for seg, (want_start, want_end) in zip(res["segments"], [(3, 6.5), (6.5, 15.5)], strict=True):
        video = next(f for f in seg["files"] if f["kind"] == "video")
        assert abs(video["duration"] - (want_end - want_start)) <= 2 * FRAME, video
    page.goto(gw.server.url("/"))
    page.locator(f"tr[data-job='{job_id}']").wait_for()
    _shot(page, "console-list.png", tmp_path)


def test_auto_segmentation_shows_confidence(
    demo: tuple[MediaServer, str], gw: Gateway, tmp_path: Path
) -> None:
    """``segmentation.auto`` in the preview: proposed clips with their confidence on the
    timeline and in the table, titles made of their own words."""
    from playwright.sync_api import sync_playwright

    srv, vtt = demo
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS, env=_browser_env(tmp_path)
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            _preview(page, gw, srv.url("sample.mp4"), vtt, None)
            confidences = page.locator(".tl-band .tl-conf").evaluate_all(
                "els => els.map(e => Number(e.dataset.confidence))"
            )
            bands = page.locator(".tl-band").count()
            assert bands >= 1 and len(confidences) == bands
            assert all(0 <= c <= 1 for c in confidences), confidences
            table = page.locator("#clips_table td.confidence").all_text_contents()
            assert table == [f"{c:.2f}" for c in confidences]
            assert "segmentation.auto" in (page.locator("#notes").text_content() or "")
            words = " ".join(vtt.lower().split())
            for title in page.locator("#clips_table input.tl-title-input").evaluate_all(
                "els => els.map(e => e.value)"
            ):
                assert title and all(w.strip(",.").lower() in words for w in title.split())
        finally:
            browser.close()


def test_job_page_follows_a_running_job(media_server: MediaServer, tmp_path: Path) -> None:
    """While the source downloads (slowly), every planned clip waits on the timeline; Cancel
    asks first; once cancelled, the bands say not-cut. An unknown job says so."""
    from playwright.sync_api import sync_playwright

    gw = start_local(tmp_path / "data", concurrency=1)
    body = {
        "video_url": media_server.slow_url("talk.mp4", 2_000),
        "transcript": TRANSCRIPT,
        "knowledge_points": [
            {"knowledge_id": "a", "title": "Welcome", "start_time": 0, "end_time": 3},
            {"knowledge_id": "b", "title": "Commits", "start_time": 3, "end_time": 6},
        ],
    }
    try:
        job_id = gw.submit(body)["job_id"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=ARGS, env=_browser_env(tmp_path)
            )
            try:
                page = browser.new_page()
                page.goto(gw.server.url(f"/console/jobs/{job_id}"))
                page.wait_for_function(
                    "document.getElementById('status').textContent === 'processing'",
                    timeout=30_000,
                )
                page.wait_for_function("document.querySelectorAll('.tl-band.waiting').length === 2")
                assert page.locator(".tl-cue").count() == 4
                asked: list[str] = []
                page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
                page.click("#cancel")
                page.wait_for_function(
                    "document.getElementById('status').textContent === 'cancelled'",
                    timeout=30_000,
                )
                page.wait_for_function("document.querySelectorAll('.tl-band.not-cut').length === 2")
                assert asked == [f"Cancel job {job_id}?"]
                page.goto(gw.server.url("/console/jobs/no-such-job"))
                page.wait_for_function("document.getElementById('error').textContent !== ''")
                assert "no such job" in (page.locator("#error").text_content() or "")
                assert (
                    page.locator("#cancel").is_disabled() and page.locator("#retry").is_disabled()
                )
            finally:
                browser.close()
    finally:
        gw.client.close()
        gw.server.stop()
