"""The web console in a real headless browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import API, TRANSCRIPT, Gateway, start_local
from tests.httpserver import MediaServer
from videojobs_gateway.auth import hash_key
from videojobs_gateway.settings import GatewaySettings

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "gateway-console.png"
"""Refreshed only with VIDEOJOBS_UPDATE_SCREENSHOTS=1: a test run leaves the checkout alone."""


def _browser_env(tmp_path: Path) -> dict[str, str]:
    """Chromium's environment: its home, config and cache (dconf, pulse) in the test's tmp."""
    home = tmp_path / "browser-home"
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(home),
    }


def test_submit_follow_play_in_the_console(
    gw: Gateway, media_server: MediaServer, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists() or shutil.which("ffmpeg") is None:
        pytest.fail("the console test needs /usr/bin/chromium and ffmpeg")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS, env=_browser_env(tmp_path)
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            outside: list[str] = []
            page.on(
                "request",
                lambda r: None if r.url.startswith(("http://127.0.0.1", "data:"))
                else outside.append(r.url),
            )  # fmt: skip
            page.goto(gw.server.url("/"))
            page.fill("#video_url", media_server.url("talk.mp4"))
            page.fill("#transcript", json.dumps(TRANSCRIPT))
            page.fill(
                "#knowledge_points",
                "3-6 Commits and snapshots\n00:00:06-9 Branches\n9-12 Merging",
            )
            page.select_option("#formats", "mp4,webm")
            page.select_option("#precision", "accurate")
            page.click("#submit_button")
            page.wait_for_url("**/console/jobs/*")
            job_id = page.url.rsplit("/", 1)[1]
            page.wait_for_function(
                "document.getElementById('status').textContent === 'completed'", timeout=180_000
            )
            page.wait_for_selector(".clip img.thumb")
            assert page.locator(".clip").count() == 3
            titles = page.locator(".clip h3").all_text_contents()
            assert titles == ["1. Commits and snapshots", "2. Branches", "3. Merging"]
            # thumbnails loaded (decoded by the browser), downloads link to the files
            assert page.evaluate(
                "Array.from(document.querySelectorAll('.clip img.thumb'))"
                ".every(i => i.complete && i.naturalWidth > 0)"
            )
            href = page.locator(".clip a[download]").first.get_attribute("href")
            assert href is not None and href.startswith(f"{API}/files/{job_id}/")
            # play the first clip in the page: its currentTime advances
            page.evaluate("document.querySelector('.clip video').muted = true")
            page.locator(".clip button.play").first.click()
            page.wait_for_function(
                "document.querySelector('.clip video').currentTime > 0.5", timeout=30_000
            )
            page.evaluate("document.querySelector('.clip video').pause()")
            shot = tmp_path / "console.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000  # a real picture of the page
            if os.environ.get("VIDEOJOBS_UPDATE_SCREENSHOTS") == "1":
                shutil.copyfile(shot, DOCS_SCREENSHOT)
            # back on the list, the job shows completed with a full bar
            page.goto(gw.server.url("/"))
            row = page.locator(f"tr[data-job='{job_id}']")
            row.wait_for()
            assert row.locator(".status").text_content() == "completed"
            assert row.locator("progress").get_attribute("value") == "100"
            assert outside == []
        finally:
            browser.close()


def test_console_shows_field_problems(gw: Gateway, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS, env=_browser_env(tmp_path)
        )
        try:
            page = browser.new_page()
            page.goto(gw.server.url("/"))
            page.fill("#video_url", "https://example.com/v.mp4")
            page.fill("#transcript", json.dumps(TRANSCRIPT))
            page.fill("#knowledge_points", "5-2 Backwards")
            page.click("#submit_button")
            page.wait_for_function("document.getElementById('submit_error').textContent !== ''")
            text = page.locator("#submit_error").text_content() or ""
            # in the form's words, at the point's row (the check runs in the page, all at once)
            assert "Point 1 “Backwards”, end: must be after the start" in text, text
        finally:
            browser.close()


def test_console_with_an_api_key(tmp_path: Path, media_server: MediaServer) -> None:
    """apikey mode: the key pasted into the console (sessionStorage) authenticates every fetch
    and the progress stream; clips, thumbnails and downloads use signed URLs."""
    if not Path(CHROMIUM).exists() or shutil.which("ffmpeg") is None:
        pytest.fail("the console test needs /usr/bin/chromium and ffmpeg")
    from playwright.sync_api import sync_playwright

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([{"name": "web", "sha256": hash_key("key-web"), "namespace": "w"}]))
    gw = start_local(
        tmp_path / "data", settings=GatewaySettings(auth_mode="apikey", api_keys_file=keys)
    )
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=ARGS, env=_browser_env(tmp_path)
            )
            try:
                page = browser.new_page()
                page.goto(gw.server.url("/"))
                page.fill("#credential", "key-web")
                with page.expect_navigation():  # the console reloads with the credential
                    page.dispatch_event("#credential", "change")
                assert page.evaluate("sessionStorage.getItem('videojobs.credential')") == "key-web"
                page.fill("#video_url", media_server.url("talk.mp4"))
                page.fill("#transcript", json.dumps(TRANSCRIPT))
                page.fill("#knowledge_points", "3-6 Commits\n6-9 Branches")
                page.click("#submit_button")
                page.wait_for_url("**/console/jobs/*")
                job_id = page.url.rsplit("/", 1)[1]
                page.wait_for_function(
                    "document.getElementById('status').textContent === 'completed'",
                    timeout=180_000,
                )
                page.wait_for_selector(".clip img.thumb")
                assert page.evaluate(
                    "Array.from(document.querySelectorAll('.clip img.thumb'))"
                    ".every(i => i.complete && i.naturalWidth > 0)"
                )
                href = page.locator(".clip a[download]").first.get_attribute("href")
                assert href is not None and "?access=" in href
                page.evaluate("document.querySelector('.clip video').muted = true")
                page.locator(".clip button.play").first.click()
                page.wait_for_function(
                    "document.querySelector('.clip video').currentTime > 0.5", timeout=30_000
                )
                # the signed URL opens this job's file and nothing else; the API needs the key
                assert httpx.get(gw.server.url(href)).status_code == 200
                other = href.replace(f"/files/{job_id}/", "/files/other-1/")
                assert httpx.get(gw.server.url(other)).status_code == 401
                assert httpx.get(gw.server.url(f"{API}/results/{job_id}")).status_code == 401
            finally:
                browser.close()
    finally:
        gw.client.close()
        gw.server.stop()


def test_console_without_a_transcript_shows_submitter_and_run_notes(
    tmp_path: Path, media_server: MediaServer
) -> None:
    """Points with start and end need no transcript (the field stays empty); the job page says
    who submitted the job and the note the run added (a clip clamped to the source's real
    12 s); the list row names the submitter too."""
    if not Path(CHROMIUM).exists() or shutil.which("ffmpeg") is None:
        pytest.fail("the console test needs /usr/bin/chromium and ffmpeg")
    from playwright.sync_api import sync_playwright

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([{"name": "web", "sha256": hash_key("key-web"), "namespace": "w"}]))
    gw = start_local(
        tmp_path / "data", settings=GatewaySettings(auth_mode="apikey", api_keys_file=keys)
    )
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=ARGS, env=_browser_env(tmp_path)
            )
            try:
                page = browser.new_page()
                page.goto(gw.server.url("/"))
                page.fill("#credential", "key-web")
                with page.expect_navigation():
                    page.dispatch_event("#credential", "change")
                page.fill("#video_url", media_server.url("talk.mp4"))
                page.fill("#knowledge_points", "3-6 Commits\n9-30 Late")
                page.click("#submit_button")
                page.wait_for_url("**/console/jobs/*")
                page.wait_for_function(
                    "document.getElementById('status').textContent === 'completed'",
                    timeout=180_000,
                )
                assert page.locator("#submitted_by").text_content() == "submitted by key:web"
                page.wait_for_function(
                    "Array.from(document.querySelectorAll('#notes li'))"
                    ".some((li) => li.textContent.includes('clamped to the source end'))"
                )
                assert page.locator(".clip").count() == 2
                page.goto(gw.server.url("/"))
                page.wait_for_selector("#jobs tbody tr .by")
                assert page.locator("#jobs tbody tr .by").first.text_content() == "by key:web"
            finally:
                browser.close()
    finally:
        gw.client.close()
        gw.server.stop()


def test_console_with_seven_unfinished_jobs(tmp_path: Path, media_server: MediaServer) -> None:
    """Seven unfinished jobs (one running slowly, six queued): the list follows them without
    a connection each (a browser has six per host), so Submit still works and the new job
    shows up in the list."""
    if not Path(CHROMIUM).exists():
        pytest.fail("the console test needs /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    gw = start_local(tmp_path / "data", concurrency=1)
    slow = media_server.slow_url("talk.mp4", 2_000)  # minutes for one download
    body = {
        "video_url": slow,
        "transcript": TRANSCRIPT,
        "knowledge_points": [{"knowledge_id": "a", "title": "A", "start_time": 0, "end_time": 3}],
    }
    try:
        ids = [gw.submit({**body, "output": {"formats": ["mp4"]}})["job_id"] for _ in range(7)]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=ARGS, env=_browser_env(tmp_path)
            )
            try:
                page = browser.new_page()
                page.goto(gw.server.url("/"))
                page.wait_for_function("document.querySelectorAll('#jobs tbody tr').length === 7")
                page.wait_for_timeout(500)  # the list settles (any streams it opens are open)
                page.fill("#video_url", slow)
                page.fill("#transcript", json.dumps(TRANSCRIPT))
                page.fill("#knowledge_points", "0-3 Welcome")
                page.click("#submit_button")
                page.wait_for_url("**/console/jobs/*", timeout=15_000)
                new_id = page.url.rsplit("/", 1)[1]
                assert new_id not in ids
                page.wait_for_function(
                    "document.getElementById('status').textContent === 'queued'", timeout=15_000
                )
                page.goto(gw.server.url("/"))
                page.locator(f"tr[data-job='{new_id}']").wait_for(timeout=15_000)
                assert page.locator("#jobs tbody tr").count() == 8
                # a job submitted elsewhere appears in the open list by itself
                other = gw.submit({**body, "output": {"formats": ["mp4"]}})["job_id"]
                page.locator(f"tr[data-job='{other}']").wait_for(timeout=15_000)
                assert page.locator(f"tr[data-job='{other}'] .status").text_content() == "queued"
            finally:
                browser.close()
    finally:
        for job_id in gw.client.get(f"{API}/jobs").json()["jobs"]:
            gw.client.post(f"{API}/jobs/{job_id['job_id']}/cancel")
        gw.client.close()
        gw.server.stop()


def test_swagger_ui_and_redoc_work_offline(gw: Gateway, tmp_path: Path) -> None:
    """/docs and /redoc load their scripts from the app: no request leaves the machine, and
    both render the operations."""
    if not Path(CHROMIUM).exists():
        pytest.fail("the console test needs /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS, env=_browser_env(tmp_path)
        )
        try:
            page = browser.new_page()
            outside: list[str] = []
            page.route(
                "**/*",
                lambda route: route.continue_()
                if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                else (outside.append(route.request.url), route.abort())[1],
            )  # fmt: skip
            page.goto(gw.server.url("/docs"))
            page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
            assert "videojobs gateway" in (page.locator(".swagger-ui .info").text_content() or "")
            assert page.locator(".opblock-summary-path", has_text="/process").count() >= 1
            page.goto(gw.server.url("/redoc"))
            page.locator("h2", has_text="Submit a job").first.wait_for(timeout=30_000)
            assert outside == []
        finally:
            browser.close()
