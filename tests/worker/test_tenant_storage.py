"""Storage a tenant cannot misuse: per-resource default destinations, the S3 guard, re-runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.httpserver import MediaServer
from tests.worker.helpers import make_input, run
from tests.worker.test_s3 import bucket, s3_endpoint  # noqa: F401 (fixtures)
from videojobs.models import ExitCode, S3Storage, Storage, WorkerInput
from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import NetworkPolicy
from videojobs_worker.publish import (
    DirectoryPublisher,
    Published,
    Record,
    S3Publisher,
    publisher_for,
    sha256_file,
)


def test_publisher_defaults_are_unique_per_resource(tmp_path: Path) -> None:
    storage = Storage.model_validate({"pvc": {"claimName": "c"}})
    one = publisher_for(storage, pvc_root=tmp_path, destination=("ns", "one"))
    two = publisher_for(storage, pvc_root=tmp_path, destination=("ns", "two"))
    assert isinstance(one, DirectoryPublisher) and isinstance(two, DirectoryPublisher)
    assert one.root == tmp_path / "ns" / "one"
    assert two.root == tmp_path / "ns" / "two"


# -- S3 endpoints pass the network guard in cluster mode -----------------------------------------


class Canary:
    """A TCP server on 127.0.0.1 that counts connections and answers each with ``403``."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self.data = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    self.data += conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def canary() -> Iterator[Canary]:
    server = Canary()
    try:
        yield server
    finally:
        server.close()


def _worker_run(tmp_path: Path, worker_input: WorkerInput) -> subprocess.CompletedProcess[str]:
    """``videojobs-worker run`` (cluster mode) in a subprocess, as in the Job's pod."""
    path = tmp_path / "input.json"
    path.write_text(worker_input.model_dump_json(by_alias=True, exclude_none=True))
    env = {
        **os.environ,
        "VIDEOJOBS_SCRATCH": str(tmp_path / "scratch"),
        "VIDEOJOBS_OUTPUT_ROOT": str(tmp_path / "output"),
        "AWS_ACCESS_KEY_ID": "AKIACANARYCANARY0001",
        "AWS_SECRET_ACCESS_KEY": "canary-secret",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "videojobs_worker", "run", "--input", str(path), "--no-report"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _s3_input(source: str, endpoint: str, **worker: object) -> WorkerInput:
    spec = {
        "source": {"url": source, "partialDownload": "never"},
        "segments": [{"start": "1", "end": "3", "title": "One"}],
        "output": {
            "precision": "copy",
            "storage": {"s3": {"bucket": "clips", "endpoint": endpoint, "forcePathStyle": True}},
        },
    }
    return WorkerInput.model_validate(
        {
            "spec": spec,
            "resource": {"namespace": "tenant-a", "name": "talk", "uid": "u1"},
            "allowedNetworks": ["127.0.0.2/32"],
            **worker,
        }
    )


@pytest.mark.media
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_loopback_canary_gets_no_connection_from_s3_publishing(
    tmp_path: Path, media: Path, canary: Canary, host: str
) -> None:
    with MediaServer(media, host="127.0.0.2") as server:
        endpoint = canary.url.replace("127.0.0.1", host)
        proc = _worker_run(tmp_path, _s3_input(server.url("a.mp4"), endpoint))
        assert proc.returncode == ExitCode.BLOCKED_ADDRESS, proc.stderr[-2000:]
        assert "refusing" in proc.stderr
    assert canary.connections == 0
    assert b"AKIACANARY" not in canary.data


@pytest.mark.media
def test_a_platform_trusted_endpoint_is_reached(
    tmp_path: Path, media: Path, canary: Canary
) -> None:
    """The control: the same run with the canary listed by the platform does reach it (so the
    test above can fail), and gets the canary's 403 as a storage error."""
    with MediaServer(media, host="127.0.0.2") as server:
        worker_input = _s3_input(
            server.url("a.mp4"), canary.url, trustedS3Endpoints=[canary.url + "/"]
        )
        proc = _worker_run(tmp_path, worker_input)
    assert canary.connections >= 1
    assert proc.returncode == ExitCode.STORAGE, proc.stderr[-2000:]


def test_s3_requests_are_checked_in_every_thread(canary: Canary) -> None:
    """The endpoint passes the first check (allowed), then a request to a blocked host from
    another thread (boto3's transfer threads) is refused by the guard, not sent."""
    from videojobs_worker.guard import guard_host

    policy = NetworkPolicy.cluster()
    guard_host("canary.invalid.", policy)
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            socket.getaddrinfo("127.0.0.1", canary.port)
            socket.getaddrinfo("CANARY.invalid", canary.port)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=resolve)
    thread.start()
    thread.join()
    assert errors, "the registered host was resolved without a check"
    assert canary.connections == 0


def test_s3_publisher_refuses_a_loopback_endpoint_before_any_request(canary: Canary) -> None:
    storage = S3Storage.model_validate({"bucket": "clips", "endpoint": canary.url})
    with pytest.raises(WorkerError) as caught:
        S3Publisher(storage, policy=NetworkPolicy.cluster())
    assert caught.value.exit_code == ExitCode.BLOCKED_ADDRESS
    assert canary.connections == 0


@pytest.mark.s3
def test_guarded_s3_publishing_works_where_the_policy_allows(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Through the guard (moto on loopback, allowPrivateNetworks): uploads in boto3's transfer
    threads, lookups and the bucket check all work."""
    name, storage = request.getfixturevalue("bucket")  # moto, from test_s3
    publisher = S3Publisher(storage, policy=NetworkPolicy.cluster(allow_private=True))
    assert publisher.check().startswith(f"bucket s3://{name}")
    clip = tmp_path / "01-a.mp4"
    clip.write_bytes(os.urandom(100_000))
    record = Record(sha256=sha256_file(clip), bytes=clip.stat().st_size, recipe="r")
    publisher.publish(clip, clip.name, record)
    found = publisher.lookup(clip.name)
    assert found is not None and found.record.sha256 == record.sha256


# -- re-runs: orphaned temporaries, manifests never pointing at replaced clips -------------------

_SLOW_PUBLISH = """
import sys
from pathlib import Path
from videojobs_worker.publish import DirectoryPublisher, Record
DirectoryPublisher(Path(sys.argv[1])).publish(Path(sys.argv[2]), "01-a.mp4", Record("x", 1))
"""


def test_an_orphaned_temporary_is_removed_on_rerun_after_sigkill(tmp_path: Path) -> None:
    out = tmp_path / "out"
    fifo = tmp_path / "source.fifo"
    os.mkfifo(fifo)
    child = subprocess.Popen([sys.executable, "-c", _SLOW_PUBLISH, str(out), str(fifo)])
    try:
        with fifo.open("wb") as writer:  # the child copies what it gets, then waits for more
            writer.write(b"x" * (3 * 1024 * 1024 // 2))  # more than one copy chunk
            writer.flush()
            deadline = time.monotonic() + 30
            while not any(p.stat().st_size for p in out.glob(".01-a.mp4.tmp-*")):
                assert time.monotonic() < deadline, "the child never started writing"
                assert child.poll() is None
                time.sleep(0.02)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(list(out.glob(".01-a.mp4.tmp-*"))) == 1  # what a SIGKILL leaves behind
    # the re-run: a lookup (resume) already cleans up, and so does publishing the name again
    publisher = DirectoryPublisher(out)
    assert publisher.lookup("01-a.mp4") is None
    assert list(out.glob(".*.tmp-*")) == []
    leftover = out / ".01-a.mp4.tmp-0badf00d"
    leftover.write_bytes(b"junk")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"clip")
    publisher.publish(clip, "01-a.mp4", Record(sha256_file(clip), 4))
    assert not leftover.exists()
    assert sorted(p.name for p in out.iterdir()) == ["." + "videojobs", "01-a.mp4"]


class _FailingAfter(DirectoryPublisher):
    """A directory publisher that fails after ``ok`` clip files (a crash mid-run)."""

    def __init__(self, root: Path, ok: int) -> None:
        super().__init__(root)
        self.ok = ok
        self.events: list[str] = []

    def publish(self, local: Path, name: str, record: Record) -> Published:
        if name != "manifest.json":
            if self.ok <= 0:
                raise WorkerError(ExitCode.STORAGE, "PublishFailed", "disk went away")
            self.ok -= 1
        self.events.append(f"publish {name}")
        return super().publish(local, name, record)

    def discard(self, name: str) -> None:
        self.events.append(f"discard {name}")
        super().discard(name)


def _manifest_matches_files(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    for segment in manifest["segments"]:
        for file in segment["files"]:
            path = out / Path(file["uri"].removeprefix("file://")).name
            assert sha256_file(path) == file["sha256"], path.name


@pytest.mark.media
def test_a_rerun_never_leaves_a_manifest_pointing_at_replaced_clips(
    tmp_path: Path, media: Path
) -> None:
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    segments = [(0.5, 2.0), (2.5, 4.0)]
    first = make_input(str(media / "a.mp4"), segments, precision="copy")
    code, _, _ = run(first, out, scratch, policy=NetworkPolicy.local())
    assert code == 0
    _manifest_matches_files(out)
    # a changed recipe (same stems), and the run dies after replacing the first clip's video
    changed = make_input(str(media / "a.mp4"), segments, precision="accurate")
    failing = _FailingAfter(out, ok=1)
    code, _, _ = run(changed, out, scratch, policy=NetworkPolicy.local(), publisher=failing)
    assert code == ExitCode.STORAGE
    assert failing.events[0] == "discard manifest.json"  # before any clip was replaced
    assert failing.events[1].startswith("publish 0")  # one clip file replaced, then the crash
    assert not (out / "manifest.json").exists()
    # the re-run completes: a manifest again, consistent with the files
    code, result, _ = run(changed, out, scratch, policy=NetworkPolicy.local())
    assert code == 0 and result is not None
    _manifest_matches_files(out)
    # a resume with nothing to cut keeps the manifest (nothing is replaced)
    kept = _FailingAfter(out, ok=0)
    code, _, _ = run(changed, out, scratch, policy=NetworkPolicy.local(), publisher=kept)
    assert code == 0 and "discard manifest.json" not in kept.events
