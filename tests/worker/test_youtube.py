"""YouTube and Vimeo as they are: the JavaScript runtime, doctor, bot checks, embeds.

Everything here is offline: the runtime is the one ``videojobs[worker]`` installs (Deno from
PyPI), the error messages are built by yt-dlp's own extractors and error path, and the embed
test is a local server that serves only requests with the right ``Referer``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yt_dlp
import yt_dlp.utils
from yt_dlp.extractor.vimeo import VimeoBaseInfoExtractor
from yt_dlp.extractor.youtube import YoutubeIE

from tests.httpserver import EMBED_REFERER, MediaServer
from videojobs.models import ExitCode, Source
from videojobs_worker import jsruntime
from videojobs_worker.download import (
    COOKIES_HINT,
    Downloader,
    DownloadOptions,
    build_ydl_opts,
    classify_download_error,
)
from videojobs_worker.errors import WorkerError
from videojobs_worker.jsruntime import (
    JsRuntime,
    RuntimeNotFound,
    age_days,
    candidates,
    doctor_checks,
    find_js_runtime,
    parse_version,
    supported,
    ydl_js_options,
)

# -- the runtime -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "output", "version"),
    [
        ("deno", "deno 2.9.8 (stable, release, x86_64-unknown-linux-gnu)\nv8 15.0", "2.9.8"),
        ("node", "v20.20.2\n", "20.20.2"),
        ("bun", "1.2.3\n", "1.2.3"),
        ("quickjs", "QuickJS version 2024-01-13\nusage: qjs [options]", "2024-01-13"),
        ("deno", "command not found", None),
    ],
)
def test_parse_version(name: str, output: str, version: str | None) -> None:
    assert parse_version(name, output) == version


def test_node_needs_20() -> None:
    assert not supported("node", "18.19.0")
    assert supported("node", "20.0.0") and supported("node", "22.1.0")
    assert supported("deno", "2.0.0")


def test_candidates_from_the_environment() -> None:
    assert candidates("none") == []
    assert candidates("deno:/opt/deno/bin/deno") == [("deno", "/opt/deno/bin/deno")]
    with pytest.raises(RuntimeNotFound, match="unknown runtime 'rhino'"):
        candidates("rhino")


def test_the_installed_runtime_is_found() -> None:
    runtime = find_js_runtime("")
    assert runtime.name == "deno", "videojobs[worker] installs Deno from PyPI"
    out = subprocess.run([runtime.path, "--version"], capture_output=True, text=True).stdout
    assert out.startswith(f"deno {runtime.version}")


def test_a_missing_runtime_names_the_fix() -> None:
    with pytest.raises(RuntimeNotFound) as caught:
        find_js_runtime("deno:/nonexistent/deno")
    assert "/nonexistent/deno" in str(caught.value)
    assert "pip install 'videojobs[worker]'" in str(caught.value)


def test_ydl_options_never_fetch_solver_scripts() -> None:
    runtime = JsRuntime("deno", "2.9.8", "/x/deno")
    assert ydl_js_options(runtime) == {
        "js_runtimes": {"deno": {"path": "/x/deno"}},
        "remote_components": [],
    }
    assert ydl_js_options(None)["js_runtimes"] == {}


class _Capture:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        self.lines.append(msg)

    info = warning = error = debug


def _debug_header(tmp_path: Path, runtime: JsRuntime | None) -> list[str]:
    capture = _Capture()
    opts = build_ydl_opts(tmp_path, js_runtime=runtime, logger=capture)
    with yt_dlp.YoutubeDL({**opts, "verbose": True}):  # verbose: prints its header at start
        pass
    return capture.lines


def test_yt_dlp_lists_the_runtime_in_its_verbose_header(tmp_path: Path) -> None:
    runtime = find_js_runtime("")
    header = _debug_header(tmp_path, runtime)
    assert f"[debug] JS runtimes: deno-{runtime.version}" in header, header
    libraries = next(line for line in header if line.startswith("[debug] Optional libraries:"))
    assert "yt_dlp_ejs-" in libraries


def test_without_a_runtime_yt_dlp_says_none(tmp_path: Path) -> None:
    header = _debug_header(tmp_path, None)
    assert "[debug] JS runtimes: none (disabled)" in header


def test_runtime_runs_offline_with_its_cache_in_scratch(tmp_path: Path) -> None:
    runtime = find_js_runtime("")
    assert jsruntime.smoke_test(runtime, tmp_path) is None


# -- doctor ------------------------------------------------------------------------------------


def _doctor(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videojobs_worker", "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "VIDEOJOBS_SCRATCH": str(tmp_path), **env},
    )


def test_doctor_shows_the_runtime(tmp_path: Path) -> None:
    proc = _doctor(tmp_path)
    runtime = find_js_runtime("")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"ok   JavaScript runtime: deno {runtime.version} ({runtime.path})" in proc.stdout
    assert "ok   EJS challenge solver: yt-dlp-ejs" in proc.stdout
    assert f"ok   yt-dlp: {yt_dlp.version.__version__}" in proc.stdout


def test_doctor_fails_without_a_runtime_naming_the_fix(tmp_path: Path) -> None:
    proc = _doctor(tmp_path, VIDEOJOBS_JS_RUNTIME="deno:/nonexistent/deno")
    assert proc.returncode == 1
    line = next(x for x in proc.stdout.splitlines() if "JavaScript runtime" in x)
    assert line.startswith("FAIL") and "pip install 'videojobs[worker]'" in line


def test_doctor_warns_about_an_old_yt_dlp(tmp_path: Path) -> None:
    released = jsruntime.release_date(yt_dlp.version.__version__)
    assert released is not None
    fresh = doctor_checks(tmp_path, today=released + dt.timedelta(days=10))
    stale = doctor_checks(tmp_path, today=released + dt.timedelta(days=61))
    assert fresh[0] == ("ok", f"yt-dlp: {yt_dlp.version.__version__} (10 days old)")
    assert stale[0][0] == "warn" and "older than 60 days" in stale[0][1]
    assert age_days("2026.10.26", dt.date(2026, 12, 25)) == 60
    assert age_days("nightly", dt.date(2026, 12, 25)) is None


# -- bot checks and logins, with the messages yt-dlp prints ------------------------------------


def _youtube_reason(reason: str) -> str:
    """A YouTube playability reason as yt-dlp's YouTube extractor words it (``_video.py``)."""
    ie = YoutubeIE(yt_dlp.YoutubeDL({"quiet": True}))
    if "sign in" in reason.lower():
        reason = yt_dlp.utils.remove_end(reason, "This helps protect our community. Learn more")
        reason = f"{yt_dlp.utils.remove_end(reason.strip(), '.')}. {ie._youtube_login_hint}"
    return reason


def _as_printed(exc: Exception) -> yt_dlp.utils.DownloadError:
    """``exc`` as yt-dlp's ``YoutubeDL`` reports it: a ``DownloadError`` with ``ERROR:``."""
    ydl = yt_dlp.YoutubeDL({"quiet": True, "logger": _Capture()})
    try:
        raise exc
    except Exception:
        try:
            ydl.report_error(str(exc))
        except yt_dlp.utils.DownloadError as err:
            return err
    raise AssertionError("report_error did not raise")


def _extractor_error(message: str) -> Exception:
    return yt_dlp.utils.ExtractorError(message, expected=True, video_id="dQw4w9WgXcQ", ie="youtube")


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        ("Sign in to confirm you’re not a bot. This helps protect our community. Learn more",
         ExitCode.LOGIN_REQUIRED, "BotCheck"),
        ("Sign in to confirm you're not a bot", ExitCode.LOGIN_REQUIRED, "BotCheck"),
        ("This video is unavailable. YouTube is requiring a captcha challenge before playback",
         ExitCode.LOGIN_REQUIRED, "BotCheck"),
        ("Private video. Sign in if you've been granted access to this video",
         ExitCode.PRIVATE, "PrivateVideo"),
        ("Sign in to confirm your age. This video may be inappropriate for some users.",
         ExitCode.AGE_RESTRICTED, "AgeRestricted"),
        ("Join this channel to get access to members-only content like this video, and other "
         "exclusive perks.", ExitCode.LOGIN_REQUIRED, "LoginRequired"),
        ("Video unavailable. The uploader has not made this video available in your country",
         ExitCode.GEO_BLOCKED, "GeoBlocked"),
        ("This content isn't available, try again later.", ExitCode.NETWORK, "RateLimited"),
    ],
)  # fmt: skip
def test_youtube_answers_are_classified(message: str, code: ExitCode, reason: str) -> None:
    err = classify_download_error(_as_printed(_extractor_error(_youtube_reason(message))))
    assert (err.exit_code, err.reason) == (code, reason), err
    assert err.permanent == code.permanent
    if code in (ExitCode.LOGIN_REQUIRED, ExitCode.PRIVATE, ExitCode.AGE_RESTRICTED):
        assert COOKIES_HINT in err.message
        assert "--cookies" not in err.message, "yt-dlp's command-line advice is dropped"


def test_geo_restriction_raised_as_yt_dlp_raises_it() -> None:
    exc = yt_dlp.utils.GeoRestrictedError(
        "The uploader has not made this video available in your country", countries=["DE"]
    )
    assert classify_download_error(_as_printed(exc)).exit_code == ExitCode.GEO_BLOCKED


def test_vimeo_embed_only_names_the_referer() -> None:
    message = VimeoBaseInfoExtractor._REFERER_HINT
    err = classify_download_error(_as_printed(yt_dlp.utils.ExtractorError(message, expected=True)))
    assert (err.exit_code, err.reason) == (ExitCode.LOGIN_REQUIRED, "EmbedOnly")
    assert "spec.source.httpHeaders.Referer" in err.message


def test_vimeo_password_is_permanent() -> None:
    message = "This video is protected by a password, use the --video-password option"
    err = classify_download_error(_as_printed(yt_dlp.utils.ExtractorError(message, expected=True)))
    assert (err.exit_code, err.reason) == (ExitCode.LOGIN_REQUIRED, "PasswordProtected")
    assert err.permanent


def test_format_not_available_without_runtime_says_why(tmp_path: Path) -> None:
    dl = Downloader(tmp_path, policy=None, js_runtime=None)
    exc = _as_printed(yt_dlp.utils.ExtractorError("Requested format is not available"))
    err = dl._classify(exc, logger=type("L", (), {"errors": []})())
    assert err.reason == "FormatNotAvailable" and "no JavaScript runtime" in err.message


# -- embeds: allow-listed headers reach yt-dlp and ffmpeg ---------------------------------------


def test_http_headers_are_allow_listed() -> None:
    src = Source.model_validate({"url": "https://vimeo.com/1", "httpHeaders": {"referer": "x"}})
    assert src.http_headers == {"Referer": "x"}
    for bad in ({"Cookie": "a=b"}, {"Authorization": "Bearer x"}, {"Referer": "a\r\nHost: y"}):
        with pytest.raises(ValueError, match="httpHeaders"):
            Source.model_validate({"url": "https://vimeo.com/1", "httpHeaders": bad})


def test_unlisted_vimeo_links_keep_their_hash() -> None:
    url = "https://vimeo.com/123456789/abcdef1234"
    assert Source.model_validate({"url": url}).url == url
    assert yt_dlp.extractor.vimeo.VimeoIE.suitable(url)
    match = yt_dlp.extractor.vimeo.VimeoIE._match_valid_url(url)
    assert match is not None and match.group("unlisted_hash") == "abcdef1234"


@pytest.mark.media
def test_embed_only_source_downloads_with_its_referer(
    tmp_path: Path, server: MediaServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.url("needs-referer/long.mp4")
    refused = Downloader(tmp_path / "a", DownloadOptions(retries=0), policy=None, js_runtime=None)
    (tmp_path / "a").mkdir()
    with pytest.raises(WorkerError) as caught:
        refused.download(url)
    assert caught.value.exit_code == ExitCode.LOGIN_REQUIRED
    (tmp_path / "b").mkdir()
    allowed = Downloader(
        tmp_path / "b",
        DownloadOptions(retries=0, http_headers={"Referer": EMBED_REFERER}),
        policy=None,
        js_runtime=None,
    )
    info = allowed.extract(url)
    # a ranged download: yt-dlp hands the URL and the headers to ffmpeg
    with caplog.at_level(logging.INFO):
        result = allowed.download(url, info=info, ranges=[(30.0, 36.0)])
    assert result.partial and len(result.parts) == 1
    assert result.parts[0].path.stat().st_size > 0
    assert server.bytes_served("long.mp4") < (server.root / "long.mp4").stat().st_size
