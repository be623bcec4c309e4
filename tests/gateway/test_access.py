"""Signed file URLs: one job, one identity, until they expire; tampering is refused."""

from __future__ import annotations

from videojobs_gateway.access import sign, verify
from videojobs_gateway.backend import Identity

KEY = b"k" * 32
WHO = Identity(name="key:web", namespace="team-a")


def test_a_token_names_its_identity_for_its_job_until_it_expires() -> None:
    token = sign(KEY, WHO, "job-1", ttl=60, now=1000)
    assert verify(KEY, token, "job-1", now=1059) == Identity(name="key:web", namespace="team-a")
    assert verify(KEY, token, "job-2", now=1000) is None
    assert verify(KEY, token, "job-1", now=1061) is None
    assert verify(b"x" * 32, token, "job-1", now=1000) is None


def test_tampered_or_garbage_tokens_are_refused() -> None:
    token = sign(KEY, WHO, "job-1", ttl=60, now=1000)
    body, _, mac = token.partition(".")
    forged = sign(b"other", Identity(name="key:web", namespace="kube-system"), "job-1", 60, 1000)
    assert verify(KEY, forged.partition(".")[0] + "." + mac, "job-1", now=1000) is None
    for bad in ("", ".", "x.y", body, f"{body}.{mac[:-2]}", "%%%.%%%"):
        assert verify(KEY, bad, "job-1", now=1000) is None
