"""The status reporter against an API server that accepts connections and never answers: each
request times out, the failure is logged, and closing costs about one timeout (issue 25: it
wrote nothing, logged nothing, and every run spent 30 s more at exit)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from videojobs.models import ResourceRef
from videojobs_worker.progress import ClusterReporter


@pytest.fixture
def silent_api() -> Iterator[str]:
    """Accepts TCP connections and never answers them."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_silent_api_server_costs_one_timeout_and_is_logged(
    silent_api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import kubernetes

    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters:\n- name: c\n  cluster:\n    server: {silent_api}\n"
        "users:\n- name: u\n  user:\n    token: t\n"
        "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
    ref = ResourceRef(namespace="media", name="lecture", uid="u-1")
    with caplog.at_level(logging.WARNING, logger="videojobs_worker"):
        reporter = ClusterReporter(ref, interval=0.01, request_timeout=1.0)
        reporter.stage("Downloading")
        time.sleep(0.1)
        reporter.finish("file:///output/manifest.json")
        started = time.monotonic()
        reporter.close()
        closing = time.monotonic() - started
    assert not reporter._thread.is_alive(), "the reporter is still blocked on the API server"
    assert closing < 5, f"closing took {closing:.1f} s"
    assert reporter.patches_sent == 0
    assert "status patch failed" in caplog.text and "timed out" in caplog.text.lower()
