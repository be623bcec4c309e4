"""Downloads of clips stored on S3: a short-lived presigned GET URL, with the gateway's own keys.

Tenants are not trusted. A job's spec names its bucket, endpoint and credentials Secret, and the
tenant chooses them; the gateway therefore never reads a tenant's Secret (it has no Secret
rights at all) and never signs for a bucket or endpoint the platform did not allow. It signs with
**its own** S3 access (:class:`S3Settings`: a mounted Secret, settings, or boto3's default chain
for pod identities), only for:

- an ``s3://bucket/key`` URI the job's status lists (the routes map a plain file name to one);
- in a bucket of the allow-list (``bucket`` or ``bucket/prefix``; ``{namespace}`` stands for the
  job's namespace, so ``clips-{namespace}`` or ``clips/{namespace}`` keep tenants apart even if a
  status were forged);
- when the job's spec names no endpoint, or one of the endpoints configured as this storage.

:func:`decide` is the pure decision (the reason of a refusal is the 404's detail);
:class:`Presigner` is the thin edge around ``botocore``'s ``generate_presigned_url``, which signs
locally: no request leaves the gateway.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("videojobs_gateway.presign")

AddressingStyle = Literal["auto", "path", "virtual"]


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str


@dataclass(frozen=True)
class S3Settings:
    """The gateway's own S3 access and what it may sign for."""

    buckets: tuple[str, ...] = ()
    """Allowed ``bucket`` or ``bucket/prefix`` entries; ``{namespace}``: the job's namespace."""
    endpoint_url: str | None = None
    """Where the presigned URLs point (reachable by the callers); None: AWS."""
    job_endpoints: tuple[str, ...] = ()
    """Further endpoint URLs a job's spec may name that are the same storage (in-cluster names)."""
    region: str | None = None
    addressing_style: AddressingStyle = "auto"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    credentials_dir: Path | None = None
    """A mounted Secret with files ``access-key-id`` and ``secret-access-key``."""
    default_credentials: bool = False
    """Without keys: boto3's default chain (pod identity such as IRSA)."""
    expires_seconds: int = 300


class Refused(Exception):
    """Why a file is not presigned (the detail of a 404)."""


def _endpoint(value: str | None) -> str:
    return (value or "").rstrip("/")


def parse_s3_uri(uri: str) -> S3Location:
    """Bucket and key of ``s3://bucket/key`` exactly as the worker wrote it.

    Raises:
        Refused: not an S3 URI, or a key that is not a plain ``a/b/c`` path.
    """
    if not uri.startswith("s3://"):
        raise Refused(f"not an s3:// URI ({uri.split(':', 1)[0]}://)")
    bucket, _, key = uri[5:].partition("/")
    parts = key.split("/")
    if (
        not bucket
        or not key
        or any(p in ("", ".", "..") for p in parts)
        or any(c in key for c in ("\\", "\x00", "?", "#"))
    ):
        raise Refused("the status names an S3 key that is not a plain path")
    return S3Location(bucket, key)


def allowed_entries(settings: S3Settings, namespace: str) -> list[tuple[str, str]]:
    """The allow-list for ``namespace`` as (bucket, key prefix) pairs."""
    out = []
    for entry in settings.buckets:
        bucket, _, prefix = entry.replace("{namespace}", namespace).partition("/")
        prefix = prefix.strip("/")
        out.append((bucket, f"{prefix}/" if prefix else ""))
    return out


def decide(
    settings: S3Settings,
    uri: str,
    namespace: str,
    spec_storage: dict[str, Any] | None,
) -> S3Location:
    """The object to sign for, or :class:`Refused` with the reason (pure).

    ``spec_storage`` is the job's ``spec.output.storage.s3`` (what the tenant asked for).
    """
    if not settings.buckets:
        raise Refused("this gateway serves no files stored on S3 (no buckets are allowed)")
    loc = parse_s3_uri(uri)
    s3 = spec_storage or {}
    if s3.get("bucket") not in (None, loc.bucket):
        raise Refused(f"bucket {loc.bucket!r} is not the bucket of the job's storage")
    named = s3.get("endpoint")
    if named is not None:
        same = {_endpoint(settings.endpoint_url)} | {_endpoint(e) for e in settings.job_endpoints}
        if _endpoint(named) not in same:
            raise Refused(
                f"the job's S3 endpoint {named!r} is not storage this gateway may sign for"
            )
    for bucket, prefix in allowed_entries(settings, namespace):
        if loc.bucket == bucket and loc.key.startswith(prefix):
            return loc
    raise Refused(
        f"bucket {loc.bucket!r} (key {loc.key!r}) is not on this gateway's S3 allow-list "
        f"for namespace {namespace!r}"
    )


def content_disposition(name: str, download: bool) -> str:
    """``inline`` (players) or ``attachment`` (save), with the clip's name."""
    quoted = name.replace("\\", "_").replace('"', "_")
    return f'{"attachment" if download else "inline"}; filename="{quoted}"'


class Presigner:
    """Signs GET URLs with the gateway's own credentials (locally; no network request)."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: Any = None
        self._keys: tuple[str, str] | None = None
        self._chain: tuple[bool, str] | None = None

    def _read_keys(self) -> tuple[str, str] | None:
        s = self.settings
        if s.credentials_dir is not None:
            try:
                key_id = (s.credentials_dir / "access-key-id").read_text().strip()
                secret = (s.credentials_dir / "secret-access-key").read_text().strip()
            except OSError as exc:
                raise Refused(f"the gateway's S3 credentials are unreadable ({exc})") from None
            if key_id and secret:
                return key_id, secret
        if s.access_key_id and s.secret_access_key:
            return s.access_key_id, s.secret_access_key
        return None

    def _client_for(self, keys: tuple[str, str] | None) -> Any:
        import boto3
        from botocore.config import Config

        s = self.settings
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": s.addressing_style},
        )
        kwargs: dict[str, Any] = {}
        if keys is not None:
            kwargs = {"aws_access_key_id": keys[0], "aws_secret_access_key": keys[1]}
        session = boto3.session.Session()
        return session.client(
            "s3",
            endpoint_url=s.endpoint_url or None,
            region_name=s.region or "us-east-1",
            config=config,
            **kwargs,
        )

    def _client_now(self) -> Any:
        keys = self._read_keys()  # re-read each time: a rotated Secret takes effect at once
        if keys is None and not self.settings.default_credentials:
            raise Refused("this gateway has no S3 credentials configured")
        with self._lock:
            if self._client is None or keys != self._keys:
                self._client = self._client_for(keys)
                self._keys = keys
            return self._client

    def ready(self) -> tuple[bool, str]:
        """Whether URLs can be signed now, and how (``/readyz``; no network request).

        A mounted Secret that went missing, or a default chain that finds nothing, takes the
        pod out of rotation instead of turning every S3 download into a 404.
        """
        s = self.settings
        signs = f"signs S3 URLs for {', '.join(s.buckets)} with keys from"
        try:
            keys = self._read_keys()
        except Refused as exc:
            return False, str(exc)
        if keys is not None:
            return True, f"{signs} {s.credentials_dir or 'settings'}"
        if not s.default_credentials:
            return False, "this gateway has no S3 credentials configured"
        if self._chain is None:  # resolved once: the chain may ask instance metadata (network)
            import boto3

            credentials = boto3.session.Session().get_credentials()
            self._chain = (
                (True, f"{signs} boto3's default chain ({getattr(credentials, 'method', '?')})")
                if credentials is not None
                else (False, "boto3's default credential chain found no S3 credentials")
            )
        return self._chain

    def url(self, loc: S3Location, name: str, *, download: bool = False) -> str:
        """A GET URL of the object valid for ``expires_seconds``.

        Raises:
            Refused: no credentials (none configured, or the default chain found none).
        """
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client_now()
        try:
            url: str = client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": loc.bucket,
                    "Key": loc.key,
                    "ResponseContentDisposition": content_disposition(name, download),
                },
                ExpiresIn=self.settings.expires_seconds,
            )
        except (BotoCoreError, ClientError) as exc:  # NoCredentialsError and friends
            log.warning("presigning s3://%s/%s failed: %s", loc.bucket, loc.key, exc)
            raise Refused(f"the gateway cannot sign S3 URLs ({type(exc).__name__})") from None
        return url
