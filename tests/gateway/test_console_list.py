"""The console's list page (issue 26, items 1, 5 and 8): one stream for the whole job list, the
errors it shows, its actions, a 390 px screen, and an axe-core accessibility check; and the
``/api/v1/videos/events`` stream it reads, on both backends.

The browser is Debian's chromium driven by Playwright; axe-core comes from the npm registry
(.ci/e2e/package.json, installed by .ci/setup) and is injected into the page from disk."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.gateway.conftest import API, TRANSCRIPT, Gateway, start_local
from tests.gateway.test_console import ARGS, CHROMIUM, _browser_env
from tests.httpserver import MediaServer
from videojobs_gateway.auth import hash_key
from videojobs_gateway.settings import GatewaySettings

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / ".ci" / "e2e"
AXE = E2E / "node_modules" / "axe-core" / "axe.min.js"
FAST = GatewaySettings(stream_heartbeat_seconds=1)
POINT = [{"knowledge_id": "a", "title": "A", "start_time": 0, "end_time": 3}]
SCREENSHOTS = os.environ.get("VIDEOJOBS_UPDATE_SCREENSHOTS") == "1"


def slow_body(media_server: MediaServer) -> dict[str, Any]:
    """A job that stays unfinished for minutes (its download crawls)."""
    return {
        "video_url": media_server.slow_url("talk.mp4", 2_000),
        "transcript": TRANSCRIPT,
        "knowledge_points": POINT,
        "output": {"formats": ["mp4"]},
    }


def cancel_all(client: httpx.Client) -> None:
    for job in client.get(f"{API}/jobs", params={"limit": 200}).json()["jobs"]:
        if job["status"] not in ("completed", "failed", "cancelled"):
            client.post(f"{API}/jobs/{job['job_id']}/cancel")


# -- the events stream, read by a thread ----------------------------------------------------------


class Events:
    """``GET /events`` read in a thread: (event, data) pairs in a queue."""

    def __init__(self, client: httpx.Client, query: str = "") -> None:
        self.items: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.status = 0
        self._client = client
        self._query = query
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", f"{API}/events{self._query}", timeout=60) as r:
                self.status = r.status_code
                kind = ""
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        self.items.put((kind, json.loads(line[6:])))
                self.items.put(("closed", r.status_code))
        except httpx.HTTPError as exc:  # closed by close(), or the server went away
            self.items.put(("closed", repr(exc)))

    def next(self, kind: str, match: Any = lambda d: True, timeout: float = 30) -> Any:
        """The next ``kind`` event whose data ``match``es (others are skipped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                got, data = self.items.get(timeout=left)
            except queue.Empty:
                break
            if got == kind and match(data):
                return data
            assert got != "closed", f"the stream closed: {data}"
        raise AssertionError(f"no {kind} event in {timeout} s")

    def close(self) -> None:
        """Stop reading (the thread ends at the next line, a heartbeat at the latest)."""
        self._stop.set()
        self._thread.join(timeout=5)


def follow_a_job_through_the_stream(gw: Gateway, body: dict[str, Any]) -> None:
    """Snapshot, a new job, its change, its deletion: the same events on either backend."""
    first = gw.submit(body)["job_id"]
    events = Events(gw.client)
    try:
        snap = events.next("snapshot")
        assert [j["job_id"] for j in snap["jobs"]] == [first]
        assert snap["jobs"][0]["title"] == "talk.mp4"  # the file name in the URL
        assert snap["next_cursor"] is None
        second = gw.submit(body)["job_id"]
        new = events.next("job", lambda d: d["job_id"] == second)
        assert new["new"] is True and new["status"] in ("pending", "queued", "processing")
        assert gw.client.post(f"{API}/jobs/{second}/cancel").status_code == 200
        gone = events.next("job", lambda d: d["job_id"] == second and d["status"] == "cancelled")
        assert gone["new"] is False
        assert gw.client.delete(f"{API}/jobs/{second}").status_code == 204
        assert events.next("deleted") == {"job_id": second}
        # a filtered stream starts from the jobs of that status only
        only = Events(gw.client, "?status=cancelled&limit=5")
        try:
            assert only.next("snapshot")["jobs"] == []
        finally:
            only.close()
    finally:
        events.close()
        gw.client.post(f"{API}/jobs/{first}/cancel")


def test_events_stream_on_the_local_backend(tmp_path: Path, media_server: MediaServer) -> None:
    gw = start_local(tmp_path / "data", concurrency=1, settings=FAST)
    try:
        follow_a_job_through_the_stream(gw, slow_body(media_server))
    finally:
        gw.client.close()
        gw.server.stop()


def test_events_stream_on_the_cluster_backend(
    cluster_gw: Gateway, media_server: MediaServer
) -> None:
    follow_a_job_through_the_stream(cluster_gw, slow_body(media_server))


def test_events_stream_shows_only_the_callers_jobs(
    tmp_path: Path, media_server: MediaServer
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            [
                {"name": "ann", "sha256": hash_key("key-ann"), "namespace": "ann"},
                {"name": "bob", "sha256": hash_key("key-bob"), "namespace": "bob"},
            ]
        )
    )
    settings = GatewaySettings(auth_mode="apikey", api_keys_file=keys, stream_heartbeat_seconds=1)
    gw = start_local(tmp_path / "data", concurrency=1, settings=settings)
    ann = httpx.Client(base_url=gw.server.base_url, headers={"Authorization": "Bearer key-ann"})
    bob = httpx.Client(base_url=gw.server.base_url, headers={"Authorization": "Bearer key-bob"})
    try:
        r = gw.client.get(f"{API}/events")
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem")
        events = Events(ann)
        assert events.next("snapshot")["jobs"] == []
        theirs = bob.post(f"{API}/process", json=slow_body(media_server)).json()["job_id"]
        mine = ann.post(f"{API}/process", json=slow_body(media_server)).json()["job_id"]
        seen = events.next("job")
        assert seen["job_id"] == mine, (seen, theirs)
        events.close()
    finally:
        for client in (ann, bob):
            cancel_all(client)
            client.close()
        gw.client.close()
        gw.server.stop()


def test_point_problems_keep_their_index(gw: Gateway) -> None:
    """A text transcript's knowledge points go into the spec; their problems come back at the
    point's index in the REST names (the console shows each at its row), all of them."""
    vtt = "WEBVTT\n\n00:00.000 --> 00:03.000\nWelcome\n\n00:03.000 --> 00:06.000\nCommits\n"
    points = [
        {"knowledge_id": "a", "title": "A", "start_time": 5, "end_time": 2},
        {"knowledge_id": "b", "title": "B", "start_time": "zz"},
    ]
    body = {"video_url": "https://example.com/v.mp4", "transcript": vtt, "knowledge_points": points}
    r = gw.client.post(f"{API}/process", json=body)
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["knowledge_points[0].end_time", "knowledge_points[1].start_time"], r.text


# -- the browser ----------------------------------------------------------------------------------


@contextlib.contextmanager
def chromium(tmp_path: Path) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("the console tests need /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS, env=_browser_env(tmp_path)
        )
        try:
            yield browser
        finally:
            browser.close()


def axe_source() -> str:
    """axe-core's script: .ci/setup installs it; a checkout without it installs it here."""
    if not AXE.exists() and shutil.which("npm"):
        subprocess.run(
            ["npm", "ci", "--prefix", str(E2E), "--no-audit", "--no-fund", "--loglevel=error"],
            check=False,
            timeout=300,
        )
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run .ci/setup (npm ci --prefix .ci/e2e)")
    return AXE.read_text()


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def fits(page: Any, width: int = 390) -> int:
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(100)
    scroll: int = page.evaluate("document.documentElement.scrollWidth")
    return scroll


def test_fifty_unfinished_jobs_and_one_stream(tmp_path: Path, media_server: MediaServer) -> None:
    """50 unfinished jobs (one downloading slowly, 49 queued): the list follows all of them on
    one connection, other requests answer at once, and a job submitted from the form, then
    one submitted elsewhere, appear in the list."""
    gw = start_local(tmp_path / "data", concurrency=1, settings=FAST)
    body = slow_body(media_server)
    try:
        ids = [gw.submit(body)["job_id"] for _ in range(50)]
        with chromium(tmp_path) as browser:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            opened: list[str] = []
            ended: list[str] = []

            def streaming(url: str) -> bool:
                return "/events" in url or "/stream" in url

            page.on("request", lambda r: opened.append(r.url) if streaming(r.url) else None)
            for done in ("requestfinished", "requestfailed"):
                page.on(done, lambda r: ended.append(r.url) if streaming(r.url) else None)
            page.goto(gw.server.url("/"))
            page.wait_for_function("document.querySelectorAll('#jobs tbody tr').length === 50")
            page.wait_for_timeout(1000)  # the list settles (any streams it opens are open)
            assert len(opened) - len(ended) == 1 and f"{API}/events" in opened[-1], opened
            # twelve requests at once (twice the browser's connections per host) all answer;
            # with the connections used up they would wait for ever (-1 after 20 s)
            took = page.evaluate(
                """async () => { const t0 = performance.now();
                   const all = Promise.all(Array.from({length: 12}, () =>
                     fetch('/api/v1/videos/jobs?limit=5').then((r) => r.json())));
                   const late = new Promise((ok) => setTimeout(() => ok("late"), 20000));
                   return (await Promise.race([all, late])) === "late" ? -1
                     : performance.now() - t0; }"""
            )
            assert 0 <= took < 10_000, took
            page.fill("#video_url", body["video_url"])
            page.fill("#transcript", json.dumps(TRANSCRIPT))
            page.fill("#knowledge_points", "0-3 Welcome")
            page.click("#submit_button")
            page.wait_for_url("**/console/jobs/*", timeout=15_000)
            new_id = page.url.rsplit("/", 1)[1]
            assert new_id not in ids
            page.goto(gw.server.url("/"))
            page.locator(f"tr[data-job='{new_id}']").wait_for(timeout=15_000)
            assert page.locator("#jobs tbody tr[data-job]").count() == 50  # the newest page
            assert page.locator("#more").is_visible()
            page.click("#more")
            page.wait_for_function("document.querySelectorAll('#jobs tbody tr').length === 51")
            # a job submitted elsewhere appears on top by itself
            other = gw.submit(body)["job_id"]
            page.locator(f"tr[data-job='{other}']").wait_for(timeout=15_000)
            assert page.locator("#jobs tbody tr").first.get_attribute("data-job") == other
            assert page.locator(f"tr[data-job='{other}'] .status").text_content() == "queued"
            assert len(opened) - len(ended) == 1, (opened, ended)  # still one open stream
    finally:
        cancel_all(gw.client)
        gw.client.close()
        gw.server.stop()


def test_the_list_says_when_a_key_is_needed(tmp_path: Path, media_server: MediaServer) -> None:
    """apikey mode: without a key, or with a wrong one, the list says so (not an empty list)
    and takes a key; with the right key it shows the caller's jobs."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([{"name": "web", "sha256": hash_key("key-web"), "namespace": "w"}]))
    settings = GatewaySettings(auth_mode="apikey", api_keys_file=keys, stream_heartbeat_seconds=1)
    gw = start_local(tmp_path / "data", concurrency=1, settings=settings)
    web = httpx.Client(base_url=gw.server.base_url, headers={"Authorization": "Bearer key-web"})
    try:
        job = web.post(f"{API}/process", json=slow_body(media_server)).json()["job_id"]
        with chromium(tmp_path) as browser:
            page = browser.new_page()
            page.goto(gw.server.url("/"))
            problem = page.locator("#jobs_problem")
            problem.wait_for(timeout=15_000)
            assert "needs an API key" in (problem.text_content() or "")
            assert not page.locator("#jobs").is_visible()
            assert serious_violations(page) == []
            page.fill("#key_input", "not-the-key")
            with page.expect_navigation():
                page.click("#key_form button[type=submit]")
            problem.wait_for(timeout=15_000)
            assert "was refused" in (problem.text_content() or "")
            page.fill("#key_input", "key-web")
            with page.expect_navigation():
                page.press("#key_input", "Enter")
            page.locator(f"tr[data-job='{job}']").wait_for(timeout=15_000)
            assert not problem.is_visible()
    finally:
        cancel_all(web)
        web.close()
        gw.client.close()
        gw.server.stop()


BAD_VTT = """WEBVTT

00:00.000 --> 00:03.000
Welcome to the lesson.

00:03.000 --> 00:06.000
A commit records a snapshot.

xx --> yy
Branches are cheap pointers.
"""


def test_the_form_reports_every_problem_at_its_place(gw: Gateway, tmp_path: Path) -> None:
    """Bad input: every problem at once, in the form's words (no ``spec.…`` names), at the
    right line of the text boxes and at the right point of the editor."""
    with chromium(tmp_path) as browser:
        page = browser.new_page()
        page.goto(gw.server.url("/"))
        # checked in the page: the empty URL, a bad line of the text box, two bad points
        page.fill("#knowledge_points", "0:03-0:06 Commits\nCommits again\n6-9 Branches")
        page.click("#add_point")
        page.fill("#points li:nth-child(1) input[name=title]", "Backwards")
        page.fill("#points li:nth-child(1) input[name=start]", "0:05")
        page.fill("#points li:nth-child(1) input[name=end]", "2")
        page.click("#add_point")
        page.fill("#points li:nth-child(2) input[name=start]", "zz")
        page.click("#submit_button")
        page.wait_for_selector("#submit_error li")
        items = page.locator("#submit_error li").all_text_contents()
        assert items == [
            "Knowledge points text, line 2: expected START[-END] Title (e.g. 0:03-0:09 Commits)"
            ' or "exact quote" Title',
            "Video URL: give the video's URL (or a path on this machine)",
            "Point 1 “Backwards”, end: must be after the start (0:05)",
            "Point 2: give it a title",
            "Point 2, start: “zz” is not a time (e.g. 65, 1:05, 0:01:05.5 or 1m5s)",
        ], items
        invalid = page.eval_on_selector_all(
            "[aria-invalid=true]", "(ns) => ns.map((n) => n.id || n.name)"
        )
        assert sorted(invalid) == sorted(
            ["knowledge_points", "video_url", "kp1_end", "kp2_title", "kp2_start"]
        ), invalid
        assert page.locator("#points li:nth-child(2) .field-error").text_content() != ""
        assert serious_violations(page) == []
        # checked by the server: a bad cue timing at line 9, a quote that is not said
        page.fill("#video_url", "https://example.com/lesson.mp4")
        page.fill("#knowledge_points", "")
        page.fill("#points li:nth-child(1) input[name=end]", "0:06")
        page.fill("#points li:nth-child(2) input[name=title]", "Nowhere")
        page.fill("#points li:nth-child(2) input[name=start]", "")
        page.fill("#points li:nth-child(2) input[name=quote]", "words nobody said")
        page.fill("#transcript", BAD_VTT)
        page.click("#submit_button")
        page.wait_for_function(
            "document.querySelector('#submit_error li') && "
            "document.querySelector('#submit_error').textContent.includes('line 9')"
        )
        text = page.locator("#submit_error").text_content() or ""
        assert "Transcript, line 9: " in text and "xx --> yy" in text, text
        assert "spec." not in text and "inline" not in text and "knowledgePoints" not in text
        assert page.locator("#transcript").get_attribute("aria-invalid") == "true"


def local_clock(iso: str, zone: str) -> str:
    """``11:24 AM``: how an en-US browser in ``zone`` shows the time of ``iso``."""
    when = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return f"{(when.hour % 12) or 12}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'}"


def submit_with_the_editor(page: Any, video_url: str) -> str:
    """A job made with the point editor (one timed point, one quoted); its id."""
    page.fill("#video_url", video_url)
    page.fill("#transcript", json.dumps(TRANSCRIPT))
    page.click("#add_point")
    page.fill("#points li:nth-child(1) input[name=title]", "Commits")
    page.fill("#points li:nth-child(1) input[name=start]", "0:03")
    page.fill("#points li:nth-child(1) input[name=end]", "6")
    page.click("#add_point")
    page.fill("#points li:nth-child(2) input[name=title]", "Branches")
    page.fill("#points li:nth-child(2) input[name=quote]", "Branches are cheap pointers")
    page.select_option("#precision", "copy")
    page.click("#submit_button")
    page.wait_for_url("**/console/jobs/*", timeout=15_000)
    return page.url.rsplit("/", 1)[1]


def test_list_actions_filter_files_and_a_narrow_screen(
    gw: Gateway, media_server: MediaServer, tmp_path: Path
) -> None:
    """Titles, local times, the status filter, files (subtitles, manifest), Cancel and Delete
    with confirmation, the point editor; 390 px wide without sideways scrolling; axe-core."""
    with chromium(tmp_path) as browser:
        context = browser.new_context(
            viewport={"width": 1200, "height": 900}, timezone_id="Asia/Tokyo", locale="en-US"
        )
        page = context.new_page()
        page.goto(gw.server.url("/"))
        done = submit_with_the_editor(page, media_server.url("talk.mp4"))
        slow = gw.submit(slow_body(media_server))["job_id"]
        page.goto(gw.server.url("/"))
        row = page.locator(f"tr[data-job='{done}']")
        row.locator(".status.completed").wait_for(timeout=180_000)
        # the title the source reported (before: the file name in the URL) over the id; the
        # local time, the UTC one on hover
        summary = gw.client.get(f"{API}/jobs/{done}").json()
        assert summary["title"] == "talk" and row.locator("a.title").text_content() == "talk"
        assert row.locator(".id").text_content() == done
        created = summary["created_at"]
        shown = row.locator("time")
        assert shown.get_attribute("datetime") == created
        assert local_clock(created, "Asia/Tokyo") in (shown.text_content() or "")
        # the clips as entered in the editor; their subtitles and the manifest are linked
        row.locator("button[data-action=files]").click()
        links = page.locator("tr.files-row a")
        links.first.wait_for()
        texts = links.all_text_contents()
        assert texts.count("subtitles (vtt)") == 2 and "manifest.json" in texts, texts
        titles = page.locator("tr.files-row li").all_text_contents()
        assert titles[1].startswith("1. Commits") and titles[2].startswith("2. Branches")
        vtt = page.locator("tr.files-row a", has_text="subtitles").first.get_attribute("href")
        assert httpx.get(gw.server.url(str(vtt))).text.startswith("WEBVTT")
        assert serious_violations(page) == []
        # 390 px: no sideways scrolling, with the files open and a point in the editor
        page.click("#add_point")
        assert fits(page) <= 390
        assert serious_violations(page) == []
        if SCREENSHOTS:
            page.screenshot(path=str(ROOT / "docs" / "gateway-console-narrow.png"), full_page=True)
        page.set_viewport_size({"width": 1200, "height": 900})
        # the status filter
        page.select_option("#status_filter", "completed")
        page.wait_for_function("document.querySelectorAll('#jobs tbody tr[data-job]').length === 1")
        assert page.locator(f"tr[data-job='{slow}']").count() == 0
        page.select_option("#status_filter", "")
        page.locator(f"tr[data-job='{slow}']").wait_for()
        # Cancel asks first: "no" leaves the job alone, "yes" cancels it
        slow_row = page.locator(f"tr[data-job='{slow}']")
        page.once("dialog", lambda d: d.dismiss())
        slow_row.locator("button[data-action=cancel]").click()
        page.wait_for_timeout(500)
        assert gw.status(slow)["status"] != "cancelled"
        page.once("dialog", lambda d: d.accept())
        slow_row.locator("button[data-action=cancel]").click()
        slow_row.locator(".status.cancelled").wait_for(timeout=15_000)
        # Delete asks first too
        questions: list[str] = []
        page.once("dialog", lambda d: (questions.append(d.message), d.dismiss()))
        slow_row.locator("button[data-action=delete]").click()
        page.wait_for_timeout(500)
        assert slow_row.count() == 1 and questions[0].startswith("Delete “talk"), questions
        page.once("dialog", lambda d: d.accept())
        slow_row.locator("button[data-action=delete]").click()
        slow_row.wait_for(state="detached", timeout=15_000)
        assert gw.client.get(f"{API}/jobs/{slow}").status_code == 404
        if SCREENSHOTS:
            page.screenshot(path=str(ROOT / "docs" / "gateway-console-list.png"), full_page=True)
        context.close()
