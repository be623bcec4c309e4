"""Storage a tenant cannot misuse: per-resource default destinations, the S3 guard, re-runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.httpserver import MediaServer
from tests.worker.test_s3 import bucket, s3_endpoint  # noqa: F401 (fixtures)
from videojobs.models import ExitCode, S3Storage, Storage, WorkerInput
from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import NetworkPolicy
from videojobs_worker.publish import (
    DirectoryPublisher,
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
