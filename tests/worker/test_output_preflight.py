"""An output volume the worker cannot write fails the run at once, permanently and plainly,
before anything is downloaded (issue 25: found only after the download and the first cut, as
exit 23, so the Job downloaded again up to 3 times). The image tier shows the same with the
real case: uid 10001 and a volume owned by root (tests/images)."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.helpers import make_input, run
from videojobs.models import ExitCode
from videojobs_worker.publish import DirectoryPublisher


class Counting(http.server.ThreadingHTTPServer):
    requests = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Counting

    def do_GET(self) -> None:
        self.server.requests += 1
        self.send_error(404)

    do_HEAD = do_GET

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def source() -> Iterator[Counting]:
    server = Counting(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` refuses new files: mode 555, or for root (who writes anywhere) the immutable
    attribute, which the kernel enforces for root too (EPERM)."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.fail("chattr (e2fsprogs) is needed to make a directory unwritable for root")
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_an_unwritable_output_is_a_permanent_error_before_any_download(
    source: Counting, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    url = f"http://127.0.0.1:{source.server_address[1]}/v.mp4"
    with unwritable(out):
        code, _, reporter = run(
            make_input(url, allowPrivateNetworks=True),
            out / "job",
            tmp_path / "scratch",
            with_transcript=False,
        )
    error = reporter.patches[-1]["status"]["error"]
    assert (code, error["reason"], error["permanent"]) == (
        ExitCode.INVALID_SPEC,
        "OutputNotWritable",
        True,
    ), error
    assert f"{out / 'job'} is not writable by uid" in error["message"]
    assert source.requests == 0, "the source was downloaded before the output was checked"


def test_preflight_passes_on_a_writable_directory_and_leaves_no_file(tmp_path: Path) -> None:
    DirectoryPublisher(tmp_path / "job").preflight()
    assert [p.name for p in (tmp_path / "job").rglob("*") if p.is_file()] == []
