"""The worker decodes a mounted transcript file and a downloaded one as the CLI does (issue 27):
BOM, ``transcript.encoding``, UTF-8, else detected; never with replacement characters."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.helpers import RecordingReporter
from videojobs.models import ExitCode, VideoProcessingJobSpec, WorkerInput
from videojobs_worker.errors import WorkerError
from videojobs_worker.publish import DirectoryPublisher
from videojobs_worker.runner import Runner, RunOptions

CZECH = ["Příliš žluťoučký kůň úpěl ďábelské ódy.", "Zażółć gęślą jaźń, łódź i śnieg."]
CZECH += ["Árvíztűrő tükörfúrógép és ő.", "Děkuji za pozornost, uvidíme se zítra."]
SRT = "\n".join(
    f"{n}\n00:00:0{n},000 --> 00:00:0{n},900\n{t}\n" for n, t in enumerate(CZECH, start=1)
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """``tmp_path/www`` over HTTP on 127.0.0.1: (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *_args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _runner(tmp_path: Path, transcript: dict[str, object], path: str | None = None) -> Runner:
    spec = VideoProcessingJobSpec.model_validate(
        {
            "source": {"url": "https://example.org/v.mp4"},
            "transcript": transcript,
            "knowledgePoints": [{"id": "a", "title": "A", "quote": CZECH[2]}],
            "output": {"storage": {"pvc": {"claimName": "c"}}},
        }
    )
    return Runner(
        WorkerInput(spec=spec, transcript_path=path),
        reporter=RecordingReporter(),
        publisher=DirectoryPublisher(tmp_path / "out"),
        options=RunOptions(scratch=tmp_path / "scratch", policy=None, retries=0),
    )


@pytest.mark.parametrize("encoding", [None, "windows-1250"])
def test_mounted_file_is_decoded(tmp_path: Path, encoding: str | None) -> None:
    (tmp_path / "transcript").write_bytes(SRT.encode("windows-1250"))
    ref: dict[str, object] = {"configMapKeyRef": {"name": "t", "key": "k"}}
    if encoding:
        ref["encoding"] = encoding
    transcript = _runner(tmp_path, ref, str(tmp_path / "transcript")).resolve_transcript()
    assert transcript is not None and [c.text for c in transcript.cues] == CZECH


def test_url_transcript_is_decoded_not_replaced(tmp_path: Path, served: tuple[Path, str]) -> None:
    root, base = served
    (root / "cz.srt").write_bytes(SRT.encode("windows-1250"))
    (root / "cn.srt").write_bytes(("\ufeff" + SRT).encode("utf-16-le"))
    for name in ("cz.srt", "cn.srt"):
        transcript = _runner(tmp_path, {"url": f"{base}/{name}"}).resolve_transcript()
        assert transcript is not None and [c.text for c in transcript.cues] == CZECH
    with pytest.raises(WorkerError) as caught:
        _runner(tmp_path, {"url": f"{base}/cz.srt", "encoding": "utf-8"}).resolve_transcript()
    assert caught.value.exit_code == ExitCode.INVALID_SPEC
    assert caught.value.reason == "InvalidTranscript"
    assert "cannot decode the transcript as utf-8 (" in caught.value.message
