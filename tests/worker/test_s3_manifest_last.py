"""S3 publishing keeps the manifest last, against a real moto server process.

The invariant: whenever ``manifest.json`` is in the bucket, every object it names is there with
the content (sha256) it records. A failure after the clips but before the manifest leaves no
manifest; a reader polling the bucket while the worker publishes (a first run, then a re-run
that replaces every clip under the same names) never sees a manifest naming a missing or
replaced object. These fail if the manifest is uploaded before the clips, or if a re-run leaves
the old manifest in place while it replaces the clips (docs/testing.md, mutations).
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.worker.helpers import make_input, run
from tests.worker.test_s3 import bucket, s3_endpoint  # noqa: F401 (fixtures)
from videojobs.models import ExitCode, S3Storage
from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import NetworkPolicy
from videojobs_worker.publish import Published, Record, S3Publisher

pytestmark = pytest.mark.s3

MANIFEST = "manifest.json"
FIRST = [(0.5, 2.0), (3.0, 5.0)]
CHANGED = [(0.5, 2.5), (3.0, 5.5)]
"""Same titles, so the same file names, other times: a re-run replaces every clip."""


def _client(storage: S3Storage) -> Any:
    return boto3.client("s3", endpoint_url=storage.endpoint, region_name="us-east-1")


def manifest_violations(storage: S3Storage) -> list[str] | None:
    """What is wrong with the bucket's manifest right now; ``None`` when there is none."""
    client = _client(storage)
    key = f"{storage.prefix}/{MANIFEST}"
    try:
        body = client.get_object(Bucket=storage.bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    problems: list[str] = []
    files = [f for seg in json.loads(body)["segments"] for f in seg["files"]]
    assert files, "a manifest names the published files"
    for entry in files:
        name = entry["uri"].removeprefix(f"s3://{storage.bucket}/")
        try:
            data = client.get_object(Bucket=storage.bucket, Key=name)["Body"].read()
        except ClientError as exc:
            problems.append(f"{name}: {exc.response['Error']['Code']}")
            continue
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{name}: content differs from the manifest's sha256")
    return problems


class FailingAfter(S3Publisher):
    """A real S3 publisher whose upload number ``fail_at`` (1-based) fails like a network
    error. With the manifest last, upload ``clips + 1`` is the manifest."""

    def __init__(self, storage: S3Storage, fail_at: int) -> None:
        super().__init__(storage)
        self.fail_at = fail_at
        self.uploads: list[str] = []
        self._lock = threading.Lock()

    def publish(self, local: Path, name: str, record: Record) -> Published:
        with self._lock:
            self.uploads.append(name)
            number = len(self.uploads)
        if number == self.fail_at:
            raise WorkerError(ExitCode.STORAGE, "PublishFailed", f"injected: uploading {name}")
        return super().publish(local, name, record)


def _run(wi: Any, tmp_path: Path, publisher: S3Publisher) -> tuple[int, Any, Any]:
    return run(
        wi, tmp_path / "unused", tmp_path / "s", policy=NetworkPolicy.local(), publisher=publisher
    )


def test_a_failure_after_the_clips_leaves_no_manifest(
    tmp_path: Path,
    media: Path,
    bucket: tuple[str, S3Storage],  # noqa: F811
) -> None:
    _, storage = bucket
    clips = len(FIRST) * 3  # video, thumbnail, subtitles per segment
    wi = make_input(str(media / "a.mp4"), FIRST, precision="copy")
    failing = FailingAfter(storage, fail_at=clips + 1)
    code, result, reporter = _run(wi, tmp_path, failing)
    assert code == ExitCode.STORAGE and result is None, reporter.error
    assert len(failing.uploads) == clips + 1
    assert manifest_violations(storage) is None  # no manifest: the job did not finish
    listed = _client(storage).list_objects_v2(Bucket=storage.bucket).get("Contents", [])
    assert len(listed) == clips  # the clips are there, for a resume

    # A complete run publishes it; a re-run that replaces every clip fails before its manifest:
    # the previous manifest must not be left naming the replaced clips.
    code, result, reporter = _run(wi, tmp_path, S3Publisher(storage))
    assert code == 0 and result is not None, reporter.error
    assert manifest_violations(storage) == []
    changed = make_input(str(media / "a.mp4"), CHANGED, precision="copy")
    failing = FailingAfter(storage, fail_at=clips + 1)
    code, result, reporter = _run(changed, tmp_path, failing)
    assert code == ExitCode.STORAGE and result is None, reporter.error
    assert manifest_violations(storage) in (None, [])
    # and the next attempt finishes it
    code, result, reporter = _run(changed, tmp_path, S3Publisher(storage))
    assert code == 0 and result is not None, reporter.error
    assert manifest_violations(storage) == []


class Observed(S3Publisher):
    """A real S3 publisher that lets the reader thread complete a poll of the bucket after
    every upload and removal, so each intermediate state of the bucket is looked at."""

    def __init__(self, storage: S3Storage, reader: Reader) -> None:
        super().__init__(storage)
        self.reader = reader

    def publish(self, local: Path, name: str, record: Record) -> Published:
        published = super().publish(local, name, record)
        self.reader.wait_for_a_poll()
        return published

    def discard(self, name: str) -> None:
        super().discard(name)
        self.reader.wait_for_a_poll()


class Reader(threading.Thread):
    """Polls the bucket until stopped; records every manifest it saw and every violation."""

    def __init__(self, storage: S3Storage) -> None:
        super().__init__(daemon=True)
        self.storage = storage
        self.polls = 0
        self.manifests_seen = 0
        self.violations: list[str] = []
        self.errors: list[BaseException] = []
        self._done = threading.Event()
        self._cond = threading.Condition()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                found = manifest_violations(self.storage)
            except BaseException as exc:  # reported by the test
                self.errors.append(exc)
                found = None
            if found is not None:
                self.manifests_seen += 1
                self.violations += found
            with self._cond:
                self.polls += 1
                self._cond.notify_all()

    def wait_for_a_poll(self) -> None:
        """Return once a poll that started after this call has completed."""
        with self._cond:
            target = self.polls + 2
            assert self._cond.wait_for(lambda: self.polls >= target, timeout=30)

    def stop(self) -> None:
        self._done.set()
        self.join(30)


def test_a_reader_never_sees_a_manifest_naming_a_missing_or_replaced_object(
    tmp_path: Path,
    media: Path,
    bucket: tuple[str, S3Storage],  # noqa: F811
) -> None:
    _, storage = bucket
    for segments in (FIRST, CHANGED):  # a first run, then a re-run replacing every clip
        wi = make_input(str(media / "a.mp4"), segments, precision="copy")
        reader = Reader(storage)
        reader.start()
        try:
            code, result, rep = _run(wi, tmp_path, Observed(storage, reader))
        finally:
            reader.stop()
        assert code == 0 and result is not None, rep.error
        assert reader.errors == []
        assert reader.violations == [], reader.violations
        assert reader.manifests_seen >= 1  # it did see the finished manifest
        assert manifest_violations(storage) == []
