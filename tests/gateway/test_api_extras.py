"""The original specification's small things: /health, HEAD on files, a request timeout, a
body without output, a WebVTT string as the transcript."""

from __future__ import annotations

from tests.gateway.conftest import Gateway

VTT = """WEBVTT

00:00:00.000 --> 00:00:03.000
Welcome to the lesson.

00:00:03.000 --> 00:00:06.000
A commit records a snapshot.

00:00:06.000 --> 00:00:09.000
Branches are cheap pointers.

00:00:09.000 --> 00:00:12.000
Merging joins two branches.
"""


def test_health_is_the_liveness_answer(local_gw: Gateway) -> None:
    r = local_gw.client.get("/health")
    assert r.status_code == 200 and r.text == local_gw.client.get("/healthz").text == "ok\n"
