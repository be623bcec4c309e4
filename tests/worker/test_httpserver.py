"""The test HTTP server itself: ranges, counters, routes (other tests rely on it)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.httpserver import MediaServer


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


@pytest.fixture
def served(tmp_path: Path) -> tuple[MediaServer, bytes]:
    data = bytes(range(256)) * 40  # 10240 bytes
    (tmp_path / "blob.mp4").write_bytes(data)
    (tmp_path / "hls").mkdir()
    (tmp_path / "hls" / "index.m3u8").write_text("#EXTM3U\n")
    with MediaServer(tmp_path) as server:
        yield server, data


def test_ranges_and_byte_counters(served: tuple[MediaServer, bytes]) -> None:
    server, data = served
    status, body, headers = _get(server.url("blob.mp4"), {"Range": "bytes=100-199"})
    assert (status, body) == (206, data[100:200])
    assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert server.bytes_served("blob.mp4") == 100
    status, body, _ = _get(server.url("blob.mp4"), {"Range": "bytes=-10"})
    assert (status, body) == (206, data[-10:])
    status, body, _ = _get(server.url("blob.mp4"), {"Range": "bytes=10000-"})
    assert (status, body) == (206, data[10000:])
    status, _, headers = _get(server.url("blob.mp4"), {"Range": "bytes=99999-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"
    status, body, headers = _get(server.url("blob.mp4"))
    assert (status, body, headers["Content-Type"]) == (200, data, "video/mp4")
    assert server.bytes_served("blob.mp4") == 100 + 10 + 240 + len(data)


def test_routes(served: tuple[MediaServer, bytes]) -> None:
    server, data = served
    assert _get(server.url("404"))[0] == 404
    assert _get(server.url("500"))[0] == 500
    assert _get(server.url("missing.mp4"))[0] == 404
    status, body, headers = _get(server.url("html"))
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<html>" in body
    status, body, _ = _get(server.redirect_url("blob.mp4"))
    assert (status, body) == (200, data)
    assert [r.status for r in server.requests[-2:]] == [302, 200]
    status, _, headers = _get(server.url("hls/index.m3u8"))
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
    flaky = server.flaky_url("blob.mp4", 2)
    assert [_get(flaky)[0] for _ in range(3)] == [503, 503, 200]
