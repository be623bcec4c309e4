"""Publishing clips: a directory (PVC mount, local ``--out``) or an S3-compatible bucket.

Rules every backend keeps:

- **Atomic**: nothing half-written ever appears under its final name. The directory backend
  writes ``.<name>.tmp-*`` in the same directory, fsyncs it and ``os.replace``-s it into place
  (then fsyncs the directory). S3 needs no temporary key: a PUT, and the completion of a
  multipart upload, make the whole object visible at once or not at all, and a copy would double
  the traffic. An interrupted multipart upload leaves invisible parts behind; a bucket lifecycle
  rule ``AbortIncompleteMultipartUpload`` cleans them up (docs/worker.md).
- **Self-describing**: every published file carries a :class:`Record` (sha256, size, the clip's
  *recipe* and measured duration): S3 object metadata, or a sidecar JSON file under
  ``.videojobs/`` for directories. A re-run looks these up to resume: a clip whose files all
  exist with the same recipe and an intact checksum is not cut again.
- The manifest is published last by the runner, so its presence means the job finished; a re-run
  that has clips to (re)write removes the old manifest first, so no manifest ever lists a clip
  that was replaced under it.
- A sharded run publishes one part per shard (``.videojobs-parts/<run>/<index>.json``) and the
  shard that finds them all publishes the manifest (``shardparts.merge_parts``); :meth:`read` reads
  those small documents back.
- Orphaned ``.<name>.tmp-*`` files of a killed writer (SIGKILL, OOM) are removed when the name is
  looked up or written again.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import mimetypes
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from videojobs.models import ExitCode, S3Storage
from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import NetworkPolicy, find_blocked, guard_host

STATE_DIR = ".videojobs"
"""Sidecar directory of the directory backend (one JSON record per published file)."""

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json",
}


def sha256_file(path: Path, chunk: int = 1024 * 1024) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def content_type(name: str) -> str:
    """The Content-Type for a published file name."""
    suffix = Path(name).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


@dataclass(frozen=True)
class Record:
    """What is known about a published file."""

    sha256: str
    bytes: int
    recipe: str = ""
    """Digest of everything that determines the clip (source, times, format, quality)."""
    duration: float | None = None
    """Measured duration (video files)."""
    precision: str | None = None
    """Precision actually used (video files)."""
    start_offset: float | None = None
    """Actual minus planned start (video files cut with ``copy``)."""
    note: str | None = None
    """What the cutter wants the user to know (keyframe snap, smart fallback)."""

    def to_metadata(self) -> dict[str, str]:
        """S3 user metadata (string values only)."""
        meta = {"sha256": self.sha256, "bytes": str(self.bytes), "recipe": self.recipe}
        if self.duration is not None:
            meta["duration"] = f"{self.duration:.3f}"
        if self.precision is not None:
            meta["precision"] = self.precision
        if self.start_offset is not None:
            meta["start-offset"] = f"{self.start_offset:.3f}"
        if self.note:
            meta["note"] = self.note.encode("ascii", "replace").decode()[:500]
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str], size: int) -> Record | None:
        """The record stored as S3 user metadata, or ``None`` when there is none."""
        if "sha256" not in meta:
            return None

        def num(key: str) -> float | None:
            value = meta.get(key)
            return float(value) if value else None

        return cls(
            sha256=meta["sha256"],
            bytes=size,
            recipe=meta.get("recipe", ""),
            duration=num("duration"),
            precision=meta.get("precision"),
            start_offset=num("start-offset"),
            note=meta.get("note"),
        )


@dataclass(frozen=True)
class Published:
    """A file as published."""

    uri: str
    record: Record


class Publisher(Protocol):
    """Where clips go."""

    def uri(self, name: str) -> str:
        """The URI ``name`` has (or will have) once published."""
        ...

    def publish(self, local: Path, name: str, record: Record) -> Published:
        """Publish ``local`` atomically as ``name`` with its record; returns its URI."""
        ...

    def lookup(self, name: str, *, verify: bool = True) -> Published | None:
        """The record of an already published ``name`` (``None`` if absent or unverifiable).

        With ``verify`` the content is checked against the recorded checksum where that is cheap
        (the directory backend hashes the file; S3's atomic PUTs make the metadata trustworthy).
        """
        ...

    def check(self) -> str:
        """Check that the destination is reachable and writable; a line for ``doctor``."""
        ...

    def discard(self, name: str) -> None:
        """Remove a published ``name`` (and its record) if it is there."""
        ...

    def read(self, name: str) -> bytes | None:
        """The content of a published ``name`` (small files: shard parts), ``None`` if absent."""
        ...


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _storage_error(exc: BaseException, what: str) -> WorkerError:
    if isinstance(exc, OSError) and exc.errno == 28:
        return WorkerError(ExitCode.NO_SPACE, "OutputFull", f"{what}: {exc}")
    return WorkerError(ExitCode.STORAGE, "PublishFailed", f"{what}: {exc}")


class DirectoryPublisher:
    """A directory: a PVC mount in the cluster, ``--out`` locally."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def uri(self, name: str) -> str:
        return (self.root / name).as_uri()

    @staticmethod
    def _discard_temporaries(dest: Path) -> None:
        """Remove ``.<name>.tmp-*`` left by a writer of the same name that was killed (SIGKILL,
        OOM, node loss): nothing else writes that name, so they are orphans."""
        with contextlib.suppress(OSError):
            for orphan in dest.parent.glob(f".{glob.escape(dest.name)}.tmp-*"):
                orphan.unlink(missing_ok=True)

    def _write_atomic(self, dest: Path, write: Any) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._discard_temporaries(dest)
        tmp = dest.with_name(f".{dest.name}.tmp-{secrets.token_hex(4)}")
        try:
            with tmp.open("wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(dest.parent)

    def publish(self, local: Path, name: str, record: Record) -> Published:
        dest = self.root / name
        try:
            with local.open("rb") as src:
                self._write_atomic(dest, lambda fh: shutil.copyfileobj(src, fh, 1024 * 1024))
            sidecar = json.dumps(asdict(record)).encode()
            self._write_atomic(self.root / STATE_DIR / f"{name}.json", lambda fh: fh.write(sidecar))
        except OSError as exc:
            raise _storage_error(exc, f"writing {dest}") from None
        return Published(self.uri(name), record)

    def lookup(self, name: str, *, verify: bool = True) -> Published | None:
        path = self.root / name
        sidecar = self.root / STATE_DIR / f"{name}.json"
        self._discard_temporaries(path)
        self._discard_temporaries(sidecar)
        try:
            record = Record(**json.loads(sidecar.read_text()))
            size = path.stat().st_size
        except (OSError, ValueError, TypeError):
            return None
        if size != record.bytes or (verify and sha256_file(path) != record.sha256):
            return None
        return Published(self.uri(name), record)

    def check(self) -> str:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".doctor-{secrets.token_hex(4)}"
            probe.write_bytes(b"ok")
            probe.unlink()
            free = shutil.disk_usage(self.root).free
        except OSError as exc:
            raise _storage_error(exc, f"output directory {self.root} is not writable") from None
        return f"output directory {self.root} writable, {free / 2**30:.1f} GiB free"

    def preflight(self) -> None:
        """Before any download: the directory must take a file. A volume the worker's user
        cannot write (hostPath and local-path volumes ignore the pod's fsGroup) is a permanent
        failure stated plainly, not a transient one found after the download (issue 25)."""
        try:
            (self.root / STATE_DIR).mkdir(parents=True, exist_ok=True)
            probe = self.root / STATE_DIR / f".preflight-{secrets.token_hex(4)}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise _storage_error(exc, f"output directory {self.root}") from None
            raise WorkerError(
                ExitCode.INVALID_SPEC,
                "OutputNotWritable",
                f"the output directory {self.root} is not writable by uid {os.getuid()} "
                f"gid {os.getgid()} ({exc.strerror}: {exc.filename}); the volume must let the "
                "worker's user write: hostPath and local-path volumes ignore fsGroup, so own "
                "them by uid 10001 (docs/troubleshooting.md)",
            ) from None

    def discard(self, name: str) -> None:
        try:
            (self.root / name).unlink(missing_ok=True)
            (self.root / STATE_DIR / f"{name}.json").unlink(missing_ok=True)
        except OSError as exc:
            raise _storage_error(exc, f"removing {self.root / name}") from None
        _fsync_dir(self.root)

    def read(self, name: str) -> bytes | None:
        # Unlike lookup, no clean-up of temporaries: another shard may be writing this name
        # (its part) right now, and reading must never break that write.
        path = self.root / name
        try:
            record = Record(**json.loads((self.root / STATE_DIR / f"{name}.json").read_text()))
            data = path.read_bytes()
        except (FileNotFoundError, ValueError, TypeError):
            return None
        except OSError as exc:
            raise _storage_error(exc, f"reading {path}") from None
        if len(data) != record.bytes or hashlib.sha256(data).hexdigest() != record.sha256:
            return None
        return data


class S3Publisher:
    """An S3-compatible bucket (AWS, MinIO, Ceph, moto...)."""

    def __init__(
        self,
        storage: S3Storage,
        *,
        multipart_threshold: int = 64 * 1024 * 1024,
        multipart_chunksize: int = 16 * 1024 * 1024,
        client: Any = None,
        prefix: str | None = None,
        policy: NetworkPolicy | None = None,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = storage.bucket
        self.prefix = (prefix if prefix is not None else storage.prefix or "").strip("/")
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=4,
            use_threads=True,
        )
        if client is None:
            config = Config(
                s3={"addressing_style": "path" if storage.force_path_style else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=20,
                read_timeout=120,
            )
            # Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the Secret via env, or
            # the pod's identity (IRSA, instance profile) through boto3's default chain.
            endpoint = storage.endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
            if policy is not None and storage.endpoint:
                # A tenant's endpoint passes the same guard as downloads, before any request
                # (which would carry the access key id) leaves the pod.
                policy.check_url(storage.endpoint)
            client = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name=storage.region or os.environ.get("AWS_REGION") or None,
                config=config,
            )
            if policy is not None:
                client.meta.events.register("before-send.s3", _guard_request(policy))
        self.client = client

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @staticmethod
    def _refused(exc: BaseException) -> WorkerError | None:
        if isinstance(exc, WorkerError):
            return exc
        return find_blocked(exc)

    def uri(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def publish(self, local: Path, name: str, record: Record) -> Published:

        try:
            self.client.upload_file(
                str(local),
                self.bucket,
                self.key(name),
                ExtraArgs={"Metadata": record.to_metadata(), "ContentType": content_type(name)},
                Config=self.transfer,
            )
        except Exception as exc:  # botocore, OSError, boto3's S3UploadFailedError and friends
            refused = self._refused(exc)
            if refused is not None:
                raise refused from None
            raise _storage_error(exc, f"uploading {self.uri(name)}") from None
        return Published(self.uri(name), record)

    def lookup(self, name: str, *, verify: bool = True) -> Published | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(name))
        except WorkerError:
            raise
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _storage_error(exc, f"checking {self.uri(name)}") from None
        record = Record.from_metadata(head.get("Metadata") or {}, int(head["ContentLength"]))
        if record is None:
            return None
        meta_bytes = (head.get("Metadata") or {}).get("bytes")
        if verify and meta_bytes is not None and int(meta_bytes) != record.bytes:
            return None
        return Published(self.uri(name), record)

    def check(self) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except WorkerError:
            raise
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error(exc, f"bucket {self.bucket} is not reachable") from None
        return f"bucket s3://{self.bucket} reachable"

    def discard(self, name: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(name))
        except Exception as exc:
            refused = self._refused(exc)
            if refused is not None:
                raise refused from None
            raise _storage_error(exc, f"removing {self.uri(name)}") from None

    def read(self, name: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
            return bytes(obj["Body"].read())
        except WorkerError:
            raise
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _storage_error(exc, f"reading {self.uri(name)}") from None
        except Exception as exc:
            refused = self._refused(exc)
            if refused is not None:
                raise refused from None
            raise _storage_error(exc, f"reading {self.uri(name)}") from None


def _guard_request(policy: NetworkPolicy) -> Any:
    """A botocore ``before-send`` handler: every S3 request's URL passes the network guard."""

    def check(request: Any, **_: Any) -> None:
        policy.check_url(request.url)
        host = urlsplit(request.url).hostname
        if host:
            guard_host(host, policy)  # the connect, in whatever thread, is checked again
        return None

    return check


def publisher_for(
    storage: Any,
    *,
    out_dir: Path | None = None,
    pvc_root: Path | None = None,
    destination: tuple[str, str] | None = None,
    policy: NetworkPolicy | None = None,
    trusted_endpoints: Sequence[str] = (),
) -> Publisher:
    """The publisher for a spec's ``output.storage``.

    ``out_dir`` (local runs) overrides the storage: clips go to that directory. In the cluster a
    PVC is mounted at ``pvc_root`` (``/output``) and clips go to ``<pvc_root>/<pvc.path>``.
    ``destination`` is the resource's ``(namespace, name)``: a ``pvc.path`` or ``s3.prefix`` left
    out defaults to ``<namespace>/<name>``, so two resources never share a directory or prefix
    unless they ask for it. ``policy`` (cluster mode) guards a tenant's S3 endpoint like a
    download, unless the endpoint is one of the platform's ``trusted_endpoints``.
    """
    namespace, name = destination or ("default", "videojobs")
    if out_dir is not None:
        return DirectoryPublisher(out_dir)
    if storage.s3 is not None:
        trusted = {e.rstrip("/") for e in trusted_endpoints}
        endpoint = (storage.s3.endpoint or "").rstrip("/")
        guard = None if endpoint and endpoint in trusted else policy
        return S3Publisher(storage.s3, prefix=storage.s3.key_prefix(namespace, name), policy=guard)
    if pvc_root is None:
        raise WorkerError(ExitCode.USAGE, "NoOutput", "PVC storage needs the volume mount")
    return DirectoryPublisher(pvc_root / storage.pvc.directory(namespace, name))


def relative_uris(manifest: dict[str, Any], manifest_uri: str) -> dict[str, Any]:
    """``manifest`` with each clip file's ``file://`` URI in the manifest's own folder written
    as its name relative to the manifest (the folder can be moved, copied or served as it is);
    other URIs (``s3://``, another folder) are kept. Pure: ``manifest`` is not changed."""
    if not manifest_uri.startswith("file://"):
        return manifest
    folder = manifest_uri.rsplit("/", 1)[0] + "/"
    segments = []
    for seg in manifest.get("segments") or []:
        files = [
            {**f, "uri": unquote(f["uri"][len(folder) :])}
            if isinstance(f.get("uri"), str) and f["uri"].startswith(folder)
            else f
            for f in seg.get("files") or []
        ]
        segments.append({**seg, "files": files})
    return {**manifest, "segments": segments}
