"""Real yt-dlp downloads from the local media server: formats, ranges, failures, the guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.httpserver import MediaServer
from tests.mediakit import ffprobe_json
from videojobs.models import ExitCode
from videojobs_worker.download import (
    Downloader,
    DownloadOptions,
    DownloadProgress,
    fetch_text,
    plan_ranges,
)
from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import GuardProxy, NetworkPolicy

pytestmark = pytest.mark.media


def _downloader(tmp_path: Path, **kwargs) -> Downloader:
    kwargs.setdefault("policy", None)
    kwargs.setdefault("backoff", 0.05)
    kwargs.setdefault("retries", 2)
    fields = {k: kwargs.pop(k) for k in list(kwargs) if k in DownloadOptions.__dataclass_fields__}
    return Downloader(tmp_path, DownloadOptions(**fields), **kwargs)


def _duration(path: Path) -> float:
    return float(ffprobe_json(path)["format"]["duration"])


@pytest.mark.parametrize(
    ("name", "container"), [("a.mp4", "mp4"), ("b.webm", "webm"), ("hls/index.m3u8", "mp4")]
)
def test_downloads_whole_source(tmp_path: Path, server: MediaServer, name: str, container: str):
    reports: list[DownloadProgress] = []
    dl = _downloader(tmp_path, on_progress=reports.append)
    result = dl.download(server.url(name))
    assert len(result.parts) == 1 and not result.partial
    path = result.parts[0].path
    assert path.parent == tmp_path and path.suffix == f".{container}"
    expected = 4.0 if name == "b.webm" else 8.0
    assert abs(_duration(path) - expected) < 0.2
    if name.endswith(".m3u8"):  # MPEG-TS segments, remuxed to MP4 afterwards
        segments = sum(server.bytes_served(f"hls/seg{i:03d}.ts") for i in range(4))
        assert reports and reports[-1].downloaded_bytes == segments
    else:
        assert reports and reports[-1].downloaded_bytes == path.stat().st_size
    streams = {s["codec_type"] for s in ffprobe_json(path)["streams"]}
    assert streams == {"video", "audio"}


@pytest.mark.parametrize(("max_height", "height"), [(None, 480), (240, 240), (360, 240)])
def test_max_height_picks_the_rendition(
    tmp_path: Path, server: MediaServer, max_height: int | None, height: int
):
    result = _downloader(tmp_path, max_height=max_height).download(
        server.url("hls-multi/master.m3u8")
    )
    video = [s for s in ffprobe_json(result.parts[0].path)["streams"] if s["codec_type"] == "video"]
    assert video[0]["height"] == height
    other = "v240" if height == 480 else "v480"
    assert server.bytes_served_under(f"hls-multi/{other}/seg") == 0


def test_ranged_download_fetches_a_fraction(tmp_path: Path, server: MediaServer, media: Path):
    size = (media / "long.mp4").stat().st_size
    ranges = plan_ranges([(40.0, 44.0)], 90.0)
    result = _downloader(tmp_path).download(server.url("long.mp4"), ranges=ranges)
    # the range file starts at (a millisecond before) the keyframe at or before 38 s (GOP 2 s)
    assert result.partial and [p.end for p in result.parts] == [46.0]
    assert 35.9 < result.parts[0].start <= 38.0
    fetched = server.bytes_served("long.mp4")
    # 8 s of 90 s plus the index and what sat in socket buffers when ffmpeg hung up
    assert fetched < 0.4 * size, (fetched, size)
    assert abs(_duration(result.parts[0].path) - 8.0) < 0.5
    whole = _downloader(tmp_path / "whole").download(server.url("long.mp4"))
    assert whole.bytes == size and result.bytes < 0.25 * size


def test_ranged_hls_download_one_file_per_range(tmp_path: Path, server: MediaServer):
    result = _downloader(tmp_path).download(
        server.url("hls-long/index.m3u8"), ranges=[(20.0, 24.0), (61.0, 65.5)]
    )
    assert [p.end for p in result.parts] == [24.0, 65.5]
    for part, asked in zip(result.parts, (20.0, 61.0), strict=True):
        assert asked - 2.1 < part.start <= asked  # from the segment's keyframe (2 s segments)
    assert len({p.path for p in result.parts}) == 2
    for part in result.parts:
        assert abs(_duration(part.path) - (part.end - part.start)) < 0.6
    fetched = {r.path for r in server.requests if r.path.endswith(".ts")}
    # ffmpeg probes the first two 2 s segments, then reads only those holding each range
    assert {"hls-long/seg010.ts", "hls-long/seg030.ts", "hls-long/seg032.ts"} <= fetched
    assert len(fetched) <= 12, sorted(fetched)  # of 45


@pytest.mark.parametrize(
    ("path", "code"),
    [("404", ExitCode.UNAVAILABLE), ("html", ExitCode.UNSUPPORTED_URL), ("500", ExitCode.NETWORK)],
)
def test_failures_are_classified(tmp_path: Path, server: MediaServer, path: str, code: ExitCode):
    with pytest.raises(WorkerError) as caught:
        _downloader(tmp_path, retries=1).download(server.url(path))
    assert caught.value.exit_code == code, caught.value
    if code == ExitCode.NETWORK:  # transient: retried once with backoff
        assert sum(r.path == "500" for r in server.requests) == 2


def test_transient_failures_are_retried(tmp_path: Path, server: MediaServer):
    result = _downloader(tmp_path, retries=3).download(server.flaky_url("a.mp4", 2))
    assert abs(_duration(result.parts[0].path) - 8.0) < 0.2
    assert [r.status for r in server.requests if r.path.startswith("flaky")][:2] == [503, 503]


def test_cluster_mode_refuses_loopback(tmp_path: Path, server: MediaServer):
    with pytest.raises(WorkerError) as caught:
        _downloader(tmp_path, policy=NetworkPolicy.cluster()).download(server.url("a.mp4"))
    assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS
    assert server.requests == []  # refused before any connection


def test_cluster_mode_refuses_a_redirect_to_a_blocked_host(
    tmp_path: Path, server: MediaServer, media: Path
):
    # The first host is allowed by allowedNetworks; it redirects to a second loopback address
    # (a real server that would answer) which is not allowed: the guard must stop the redirect.
    policy = NetworkPolicy.cluster(allowed_networks=["127.0.0.1/32"])
    with MediaServer(media, host="127.0.0.2") as other:
        target = other.url("a.mp4")
        unguarded = _downloader(tmp_path / "free").download(server.redirect_url(target))
        assert unguarded.parts and other.bytes_served("a.mp4") > 0
        other.reset()
        with pytest.raises(WorkerError) as caught:
            _downloader(tmp_path / "guarded", policy=policy).download(server.redirect_url(target))
        assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS, caught.value
        assert "127.0.0.2" in caught.value.message
        assert other.requests == []
    assert any(r.path == "redirect" for r in server.requests)


def test_redirect_to_metadata_endpoint_is_refused(tmp_path: Path, server: MediaServer):
    policy = NetworkPolicy.cluster(allowed_networks=["127.0.0.1/32"])
    url = server.redirect_url("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(WorkerError) as caught:
        _downloader(tmp_path, policy=policy, retries=0).download(url)
    assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS


def test_transcript_download_is_guarded(tmp_path: Path, server: MediaServer, media: Path):
    (media / "t.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n")
    try:
        assert "hello" in fetch_text(server.url("t.vtt"), None)
        with pytest.raises(WorkerError) as caught:
            fetch_text(server.url("t.vtt"), NetworkPolicy.cluster())
        assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS
        allowed = NetworkPolicy.cluster(allowed_networks=["127.0.0.1/32"])
        with pytest.raises(WorkerError) as caught:
            fetch_text(server.redirect_url("http://127.0.0.2:9/t.vtt"), allowed)
        assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS
        with pytest.raises(WorkerError) as caught:
            fetch_text(server.url("404"), None)
        assert caught.value.exit_code == ExitCode.UNAVAILABLE
    finally:
        (media / "t.vtt").unlink()


def test_ffmpeg_is_guarded_too(tmp_path: Path, server: MediaServer, media: Path):
    # A ranged download hands the media URL to ffmpeg. This server redirects only ffmpeg
    # (User-Agent Lavf) to a second host that the policy does not allow; every check made in
    # Python sees the harmless file. The guard's proxy must stop ffmpeg's redirect.
    policy = NetworkPolicy.cluster(allowed_networks=["127.0.0.1/32"])
    with MediaServer(media, host="127.0.0.2") as other:
        url = server.url("lavf-redirect/long.mp4") + "?to=" + other.url("long.mp4")
        ranges = [(40.0, 44.0)]
        unguarded = _downloader(tmp_path / "free").download(url, ranges=ranges)
        assert unguarded.parts and other.bytes_served("long.mp4") > 0  # the redirect works
        other.reset()
        with GuardProxy(policy) as proxy:
            dl = _downloader(tmp_path / "guarded", policy=policy, proxy=proxy, retries=0)
            with pytest.raises(WorkerError) as caught:
                dl.download(url, ranges=ranges)
        assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS, caught.value
        assert "127.0.0.2" in caught.value.message and other.requests == []


def test_ranged_download_through_the_guard_proxy(tmp_path: Path, server: MediaServer):
    policy = NetworkPolicy.cluster(allowed_networks=["127.0.0.1/32"])
    for name in ("long.mp4", "hls-long/index.m3u8"):
        with GuardProxy(policy) as proxy:
            dl = _downloader(tmp_path / name.split("/")[0], policy=policy, proxy=proxy)
            result = dl.download(server.url(name), ranges=[(30.0, 34.0)])
            assert proxy.connections > 0 and proxy.refusals == []
        part = result.parts[0]  # from the keyframe (or audio) before 30 s: no hidden pre-roll
        assert abs(_duration(part.path) - (part.end - part.start)) < 0.6


def test_a_stalled_server_is_a_timeout(tmp_path: Path, server: MediaServer):
    stalled = server.slow_url("a.mp4", 1)  # one chunk, then nothing for a very long time
    with pytest.raises(WorkerError) as caught:
        _downloader(tmp_path, socket_timeout=1.0, retries=0).download(stalled)
    assert caught.value.exit_code == ExitCode.TIMEOUT, caught.value
    assert not caught.value.permanent
