"""Downloads that fail loudly, and the guard's smaller holes (issue #11, points 3 and 4)."""

from __future__ import annotations

import ipaddress
import shutil
import time
from pathlib import Path

import pytest

from tests.httpserver import MediaServer
from tests.worker.helpers import make_input, published_files, run
from videojobs.models import ExitCode
from videojobs_worker.download import Downloader, DownloadOptions, build_ydl_opts, check_complete
from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import NetworkPolicy

pytestmark = pytest.mark.media

LOOPBACK_ONLY = ["127.0.0.1/32"]


def _downloader(scratch: Path, policy: NetworkPolicy | None = None) -> Downloader:
    # The worker's own retry settings (4 tries, 2 s backoff): a missing fragment must still
    # fail in seconds, not after minutes of retries.
    return Downloader(scratch, DownloadOptions(retries=4, backoff=2.0), policy=policy)


@pytest.fixture
def hls(media: Path, tmp_path: Path) -> Path:
    """A private copy of the 8 s HLS stream (4 segments of 2 s) to break."""
    root = tmp_path / "www"
    shutil.copytree(media / "hls", root / "hls")
    return root


def test_fragments_are_never_skipped(tmp_path: Path) -> None:
    opts = build_ydl_opts(tmp_path, DownloadOptions(retries=4, backoff=2.0))
    assert opts["skip_unavailable_fragments"] is False
    assert opts["fragment_retries"] <= 3
    assert sum(opts["retry_sleep_functions"]["fragment"](n) for n in range(3)) <= 10


def test_a_missing_hls_segment_is_unavailable_quickly(tmp_path: Path, hls: Path) -> None:
    playlist = hls / "hls" / "index.m3u8"
    text = playlist.read_text()
    assert "seg002.ts" in text
    (hls / "hls" / "seg002.ts").unlink()
    with MediaServer(hls) as server:
        started = time.monotonic()
        with pytest.raises(WorkerError) as caught:
            _downloader(tmp_path / "dl").download(server.url("hls/index.m3u8"))
        took = time.monotonic() - started
        assert caught.value.exit_code == ExitCode.UNAVAILABLE, caught.value
        assert caught.value.permanent
        assert took < 30, took  # was ~7 minutes of retries, or a silent 4 s of 8
        assert sum(r.path == "hls/seg002.ts" for r in server.requests) >= 1
        assert not any(r.path == "hls/seg003.ts" for r in server.requests)  # stopped there
    assert not list((tmp_path / "dl").glob("source.mp4"))


def test_a_blocked_hls_segment_is_refused_quickly(tmp_path: Path, hls: Path, media: Path) -> None:
    with MediaServer(media, host="127.0.0.2") as other, MediaServer(hls) as server:
        playlist = hls / "hls" / "index.m3u8"
        playlist.write_text(playlist.read_text().replace("seg002.ts", other.url("hls/seg002.ts")))
        policy = NetworkPolicy.cluster(allowed_networks=LOOPBACK_ONLY)
        started = time.monotonic()
        with pytest.raises(WorkerError) as caught:
            _downloader(tmp_path / "dl", policy).download(server.url("hls/index.m3u8"))
        assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS, caught.value
        assert "127.0.0.2" in caught.value.message
        assert time.monotonic() - started < 20
        assert other.requests == []  # the blocked host never saw a connection


def test_a_truncated_source_is_not_cut_as_if_whole(
    tmp_path: Path, hls: Path, server: MediaServer
) -> None:
    # The playlist promises 40 s, the segments hold 8 s (a server that lost the end).
    playlist = hls / "hls" / "index.m3u8"
    lines = playlist.read_text().splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("#EXTINF"))
    lines[last] = "#EXTINF:34.000000,"
    playlist.write_text(
        "\n".join(lines).replace("#EXT-X-TARGETDURATION:2", "#EXT-X-TARGETDURATION:34") + "\n"
    )
    with MediaServer(hls) as local:
        worker_input = make_input(local.url("hls/index.m3u8"), [(1.0, 3.0)])
        code, result, reporter = run(worker_input, tmp_path / "out", tmp_path / "scratch")
    assert code == ExitCode.NETWORK, reporter.error
    assert result is None
    assert reporter.error is not None and reporter.error.reason == "TruncatedSource"
    assert "truncated" in reporter.error.message
    assert published_files(tmp_path / "out") == []


def test_check_complete_tolerance() -> None:
    check_complete(60.0, 59.0)
    check_complete(None, 3.0)
    check_complete(600.0, 590.0)  # 2 %
    with pytest.raises(WorkerError, match="truncated"):
        check_complete(60.0, 4.0)


def test_a_redirect_to_a_file_url_is_permanent(tmp_path: Path, server: MediaServer) -> None:
    policy = NetworkPolicy.cluster(allowed_networks=LOOPBACK_ONLY)
    url = server.redirect_url("file:///etc/passwd")
    with pytest.raises(WorkerError) as caught:
        _downloader(tmp_path / "dl", policy).download(url)
    assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS, caught.value
    assert caught.value.permanent
    assert sum(r.path == "redirect" for r in server.requests) == 1  # not retried


@pytest.mark.parametrize(
    "address", ["fec0::1", "fec0:1:2::3", "169.254.170.23", "fd00:ec2::23", "::ffff:169.254.170.23"]
)
def test_site_local_and_pod_identity_addresses_are_refused(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert NetworkPolicy.cluster().address_problem(ip) is not None
    # the metadata addresses stay refused with allowPrivateNetworks too
    if "170.23" in address or "ec2" in address:
        assert NetworkPolicy.cluster(allow_private=True).address_problem(ip) is not None


@pytest.mark.parametrize("host", ["metadata.google.internal", "metadata.goog.", "METADATA"])
def test_metadata_host_names_are_refused_with_allowed_networks(host: str) -> None:
    policy = NetworkPolicy.cluster(allowed_networks=["10.0.0.0/8"])
    with pytest.raises(WorkerError) as caught:
        policy.check_url(f"http://{host}/computeMetadata/v1/", resolve=False)
    assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS
    # ...unless a metadata address is listed explicitly (the documented escape hatch)
    NetworkPolicy.cluster(allowed_networks=["169.254.169.254/32"]).check_url(
        f"http://{host}/", resolve=False
    )
