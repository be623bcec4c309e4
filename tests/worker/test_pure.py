"""Pure parts of the worker: yt-dlp options, ranges, error classification, address rules."""

from __future__ import annotations

import ipaddress
import os
import sys

import pytest
import yt_dlp.utils
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError, TransportError

from videojobs.models import ExitCode
from videojobs_worker.download import (
    DownloadedPart,
    DownloadOptions,
    build_ydl_opts,
    classify_download_error,
    default_format,
    format_sort,
    part_for,
    plan_ranges,
    want_partial,
)
from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import BlockedAddressError, NetworkPolicy, find_blocked


def test_format_honours_max_height_and_prefers_h264(tmp_path) -> None:
    assert default_format(720) == "bv*[height<=?720]+ba/b[height<=?720]/bv*+ba/b"
    assert default_format(None) == "bv*+ba/b/bv*+ba/b"
    assert format_sort(720)[:3] == ["res:720", "vcodec:h264", "acodec:aac"]
    opts = build_ydl_opts(
        tmp_path, DownloadOptions(max_height=480, cookies_file=tmp_path / "c.txt")
    )
    assert opts["format"] == default_format(480)
    assert opts["cookiefile"] == str(tmp_path / "c.txt")
    assert opts["paths"] == {"home": str(tmp_path), "temp": str(tmp_path)}
    assert opts["cachedir"] is False and opts["enable_file_urls"] is False
    assert "download_ranges" not in opts
    assert opts["retry_sleep_functions"]["http"](3) == 16.0  # the default backoff, 2 s, × 2³


def test_format_override_and_ranges(tmp_path) -> None:
    opts = build_ydl_opts(tmp_path, DownloadOptions(fmt="18"), ranges=[(1.0, 5.0), (60.0, 70.0)])
    assert opts["format"] == "18"
    sections = list(opts["download_ranges"]({"duration": 100}, None))
    assert sections == [
        {"start_time": 1.0, "end_time": 5.0},
        {"start_time": 60.0, "end_time": 70.0},
    ]
    assert "%(section_start)s" in opts["outtmpl"]["default"]


def test_plan_ranges_adds_margins_and_merges() -> None:
    assert plan_ranges([(10, 20), (25, 30), (200, 210)], 205, margin=2, merge_gap=30) == [
        (8.0, 32.0),
        (198.0, 205.0),
    ]
    assert plan_ranges([(1, 3)], None, margin=2) == [(0.0, 5.0)]


def test_want_partial() -> None:
    assert want_partial("always", [(0, 10)], None)
    assert not want_partial("never", [(0, 10)], 3600)
    assert want_partial("auto", [(0, 30)], 600)
    assert not want_partial("auto", [(0, 400)], 600)  # most of the source: fetch it whole
    assert not want_partial("auto", [(0, 10)], 50)  # short source
    assert not want_partial("auto", [(0, 30)], None)  # unknown duration


def test_part_for_rebases_segments(tmp_path) -> None:
    parts = [DownloadedPart(tmp_path / "a", 8, 32), DownloadedPart(tmp_path / "b", 198, 205)]
    assert part_for(parts, 10, 30).path.name == "a"
    assert part_for(parts, 200, 205).path.name == "b"
    with pytest.raises(WorkerError):
        part_for(parts, 30, 40)


def _download_error(exc: BaseException) -> yt_dlp.utils.DownloadError:
    try:
        raise exc
    except BaseException:
        return yt_dlp.utils.DownloadError(f"ERROR: {exc}", sys.exc_info())


def _http_error(status: int) -> HTTPError:
    import io

    return HTTPError(Response(io.BytesIO(b""), "http://x/", {}, status=status, reason="R"))


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (_http_error(404), ExitCode.UNAVAILABLE),
        (_http_error(410), ExitCode.UNAVAILABLE),
        (_http_error(403), ExitCode.LOGIN_REQUIRED),
        (_http_error(503), ExitCode.NETWORK),
        (_http_error(429), ExitCode.NETWORK),
        (yt_dlp.utils.UnsupportedError("http://x/page"), ExitCode.UNSUPPORTED_URL),
        (yt_dlp.utils.GeoRestrictedError("not in your country"), ExitCode.GEO_BLOCKED),
        (TransportError("connection refused"), ExitCode.NETWORK),
        (yt_dlp.utils.ExtractorError("Private video. Sign in", expected=True), ExitCode.PRIVATE),
        (
            yt_dlp.utils.ExtractorError("Sign in to confirm your age", expected=True),
            ExitCode.AGE_RESTRICTED,
        ),
        (
            yt_dlp.utils.ExtractorError("This video is available to this channel's members"
                                        " on level: x. Join this channel", expected=True),
            ExitCode.LOGIN_REQUIRED,
        ),
        (
            yt_dlp.utils.ExtractorError(
                "The uploader has not made this video available in your country", expected=True
            ),
            ExitCode.GEO_BLOCKED,
        ),
        (yt_dlp.utils.ExtractorError("Video unavailable", expected=True), ExitCode.UNAVAILABLE),
        (OSError(28, "No space left on device"), ExitCode.NO_SPACE),
        (TimeoutError("read timed out"), ExitCode.TIMEOUT),
    ],
)  # fmt: skip
def test_classify_download_error(exc: BaseException, code: ExitCode) -> None:
    err = classify_download_error(_download_error(exc))
    assert err.exit_code == code, err
    assert err.permanent == code.permanent


def test_blocked_address_survives_wrapping() -> None:
    policy = NetworkPolicy.cluster()
    with pytest.raises(WorkerError) as caught:
        policy.check_addresses("x", ["10.0.0.1"])
    wrapped = _download_error(TransportError(cause=BlockedAddressError(caught.value)))
    assert find_blocked(wrapped) is caught.value
    assert classify_download_error(wrapped).exit_code == ExitCode.BLOCKED_ADDRESS


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fd00:ec2::254", "fc00::1",
        "::ffff:127.0.0.1", "::", "2002:0a00:0001::1",
    ],
)  # fmt: skip
def test_cluster_policy_blocks_internal_addresses(address: str) -> None:
    assert NetworkPolicy.cluster().address_problem(ipaddress.ip_address(address)) is not None


def test_cluster_policy_allows_public_and_listed_networks() -> None:
    policy = NetworkPolicy.cluster(allowed_networks=["10.20.0.0/16"])
    assert policy.address_problem(ipaddress.ip_address("93.184.216.34")) is None
    assert policy.address_problem(ipaddress.ip_address("2606:4700::1111")) is None
    assert policy.address_problem(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.address_problem(ipaddress.ip_address("10.21.3.4")) is not None
    private_ok = NetworkPolicy.cluster(allow_private=True)
    assert private_ok.address_problem(ipaddress.ip_address("10.21.3.4")) is None
    # metadata stays blocked unless listed explicitly
    assert private_ok.address_problem(ipaddress.ip_address("169.254.169.254")) is not None
    with pytest.raises(WorkerError) as bad:
        NetworkPolicy.cluster(allowed_networks=["10.0.0.0/33"])
    assert bad.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "/etc/passwd",
        "ftp://example.com/x.mp4",
        "gopher://127.0.0.1/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://127.0.0.1:8080/x.mp4",
        "http://[::1]/x.mp4",
        "http://localhost/x.mp4",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_cluster_policy_rejects_urls(url: str) -> None:
    with pytest.raises(WorkerError) as caught:
        NetworkPolicy.cluster().check_url(url)
    assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS


def test_local_policy_allows_files_and_loopback() -> None:
    NetworkPolicy.local().check_url("file:///tmp/x.mp4")
    NetworkPolicy.local().check_url("http://127.0.0.1:1/x.mp4")


def test_cpu_limit_from_cgroups(tmp_path) -> None:
    from videojobs_worker.cgroup import available_cpus, cgroup_cpu_quota

    assert cgroup_cpu_quota(tmp_path) is None  # no cgroup files: no limit
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    assert available_cpus(tmp_path) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert available_cpus(tmp_path) == 1  # half a CPU still gets one cutter
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(v1) is None
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    assert cgroup_cpu_quota(v1) == 3.0
