"""Publishing to S3 against a real moto server process on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.motoserver import moto_server
from tests.worker.helpers import make_input, run
from videojobs.models import S3Storage, Storage
from videojobs_worker.guard import NetworkPolicy
from videojobs_worker.publish import Published, Record, S3Publisher, sha256_file

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server process; stopped by its PID at the end."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request) -> tuple[str, S3Storage]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    name = "clips-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:10]
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    storage = S3Storage(
        bucket=name, prefix="courses/k8s", endpoint=s3_endpoint, region="us-east-1",
        force_path_style=True,
    )  # fmt: skip
    return name, storage


def _client(storage: S3Storage):
    return boto3.client("s3", endpoint_url=storage.endpoint, region_name="us-east-1")


def test_publish_lookup_and_multipart(tmp_path: Path, bucket: tuple[str, S3Storage]):
    name, storage = bucket
    mib = 1024 * 1024
    publisher = S3Publisher(storage, multipart_threshold=5 * mib, multipart_chunksize=5 * mib)
    assert publisher.check().startswith(f"bucket s3://{name}")
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(11 * mib))
    record = Record(sha256=sha256_file(big), bytes=big.stat().st_size, recipe="r1", duration=1.5)
    published = publisher.publish(big, "01-big.mp4", record)
    assert published.uri == f"s3://{name}/courses/k8s/01-big.mp4"
    head = _client(storage).head_object(Bucket=name, Key="courses/k8s/01-big.mp4")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: a multipart upload
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"]["sha256"] == record.sha256
    body = _client(storage).get_object(Bucket=name, Key="courses/k8s/01-big.mp4")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == record.sha256
    assert publisher.lookup("01-big.mp4") == Published(published.uri, record)
    assert publisher.lookup("missing.mp4") is None
    small = tmp_path / "t.vtt"
    small.write_text("WEBVTT\n")
    publisher.publish(small, "t.vtt", Record(sha256_file(small), small.stat().st_size))
    head = _client(storage).head_object(Bucket=name, Key="courses/k8s/t.vtt")
    assert "-" not in head["ETag"] and head["ContentType"].startswith("text/vtt")


class RecordingS3(S3Publisher):
    """A real S3 publisher that remembers the order of its uploads."""

    def __init__(self, storage: S3Storage) -> None:
        super().__init__(storage)
        self.order: list[str] = []

    def publish(self, local: Path, name: str, record: Record) -> Published:
        published = super().publish(local, name, record)
        self.order.append(name)
        return published


def test_job_publishes_to_s3_manifest_last_and_resumes(
    tmp_path: Path, media: Path, bucket: tuple[str, S3Storage]
):
    name, storage = bucket
    wi = make_input(str(media / "a.mp4"), [(0.5, 2.0), (3.0, 5.0)], precision="copy")
    publisher = RecordingS3(storage)
    code, result, reporter = run(
        wi, tmp_path / "unused", tmp_path / "s", policy=NetworkPolicy.local(), publisher=publisher
    )
    assert code == 0 and result is not None, reporter.error
    assert publisher.order[-1] == "manifest.json" and len(publisher.order) == 2 * 3 + 1
    assert result.manifest_uri == f"s3://{name}/courses/k8s/manifest.json"
    keys = {o["Key"] for o in _client(storage).list_objects_v2(Bucket=name)["Contents"]}
    assert keys == {f"courses/k8s/{n}" for n in publisher.order}
    for seg in result.segments:
        for f in seg.files:
            key = f.uri.removeprefix(f"s3://{name}/")
            body = _client(storage).get_object(Bucket=name, Key=key)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == f.sha256 and len(body) == f.bytes
    # a re-run finds every clip published with matching checksums and cuts nothing
    again = RecordingS3(storage)
    code, second, _ = run(
        wi, tmp_path / "unused", tmp_path / "s", policy=NetworkPolicy.local(), publisher=again
    )
    assert code == 0 and second is not None
    assert second.skipped == [1, 2] and second.cut == [] and again.order == ["manifest.json"]
    assert [s.to_dict() for s in second.segments] == [s.to_dict() for s in result.segments]


def test_storage_failures_are_classified(tmp_path: Path, media: Path, bucket):
    from videojobs.models import ExitCode

    _, storage = bucket
    missing = storage.model_copy(update={"bucket": "no-such-bucket"})
    wi = make_input(str(media / "a.mp4"), [(0.5, 2.0)], precision="copy")
    code, result, reporter = run(
        wi, tmp_path / "unused", tmp_path / "s", policy=NetworkPolicy.local(),
        publisher=S3Publisher(missing),
    )  # fmt: skip
    assert code == ExitCode.STORAGE and result is None
    assert reporter.error is not None and reporter.error.category == "Storage"
    assert not reporter.error.permanent
    assert list((tmp_path / "s").iterdir()) == []


def test_doctor_checks_the_bucket(tmp_path: Path, bucket):
    _, storage = bucket
    env = dict(os.environ, VIDEOJOBS_SCRATCH=str(tmp_path / "scratch"))
    for s3, expected in ((storage, 0), (storage.model_copy(update={"bucket": "nope-nope"}), 1)):
        # moto listens on loopback: in cluster mode that takes allowPrivateNetworks
        wi = make_input("https://example.com/v.mp4", allow_private_networks=True)
        spec = wi.spec.model_copy(
            update={"output": wi.spec.output.model_copy(update={"storage": Storage(s3=s3)})}
        )
        payload = wi.model_copy(update={"spec": spec}).model_dump_json(by_alias=True)
        proc = subprocess.run(
            [sys.executable, "-m", "videojobs_worker", "doctor", "--min-free-mib", "1"],
            env={**env, "VIDEOJOBS_INPUT": payload}, capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == expected, proc.stdout + proc.stderr
        line = [ln for ln in proc.stdout.splitlines() if "storage:" in ln][0]
        assert line.startswith("ok  " if expected == 0 else "FAIL"), line
