"""Short-lived signed file URLs, for what a browser fetches without headers (``<video>``,
``<img>``, download links) when the gateway requires credentials.

A token names the identity (name, namespace), one job and an expiry, and is an HMAC-SHA256 of
those under the gateway's signing key; it is accepted on ``/files/{job_id}/...`` of that job
only, until it expires. The results document carries such URLs when the caller authenticated
with credentials (every mode but ``none``). With several replicas, give them one
``VIDEOJOBS_GATEWAY_SIGNING_KEY``; by default each process draws a random key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from videojobs_gateway.backend import Identity

PARAM = "access"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign(key: bytes, identity: Identity, job_id: str, ttl: float, now: float | None = None) -> str:
    """A token for ``identity`` to read the files of ``job_id`` for ``ttl`` seconds."""
    expires = int((now if now is not None else time.time()) + ttl)
    fields: list[object] = [identity.name, identity.namespace, job_id, expires]
    if identity.rate is not None:
        fields.append(identity.rate)  # the signer's own rate limit applies to its URLs
    payload = json.dumps(fields, separators=(",", ":"))
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return f"{_b64(payload.encode())}.{_b64(mac)}"


def verify(key: bytes, token: str, job_id: str, now: float | None = None) -> Identity | None:
    """The identity a valid, unexpired token for ``job_id`` names; None otherwise."""
    try:
        body, _, mac = token.partition(".")
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        name, namespace, job, expires, *rest = json.loads(raw)
        rate = float(rest[0]) if rest else None
    except (ValueError, TypeError):
        return None
    expected = hmac.new(key, raw, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given) or job != job_id:
        return None
    if not isinstance(expires, int) or expires < (now if now is not None else time.time()):
        return None
    return Identity(name=str(name), namespace=str(namespace), rate=rate)
