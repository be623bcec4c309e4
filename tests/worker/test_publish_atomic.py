"""Publishing to a directory is atomic: a reader never sees a partial clip, and a failure
between writing and publishing leaves the previous clip (or nothing) under the final name."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from videojobs_worker import publish
from videojobs_worker.publish import DirectoryPublisher, Record

OLD = b"old clip " * 50_000
NEW = b"new clip " * 50_000


def record(data: bytes) -> Record:
    return Record(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))


def source(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "local.mp4"
    path.write_bytes(data)
    return path


def half_then(action: Any) -> Any:
    """A copyfileobj that writes half the data, runs ``action``, then writes the rest."""

    def copy(src: Any, dst: Any, length: int = 0) -> None:
        data = src.read()
        dst.write(data[: len(data) // 2])
        dst.flush()
        action()
        dst.write(data[len(data) // 2 :])

    return copy


def test_a_failure_mid_write_leaves_the_previous_clip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = DirectoryPublisher(tmp_path / "out")
    out.publish(source(tmp_path, OLD), "a/clip.mp4", record(OLD))

    def fail() -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(publish.shutil, "copyfileobj", half_then(fail))
    with pytest.raises(Exception, match="Input/output error"):
        out.publish(source(tmp_path, NEW), "a/clip.mp4", record(NEW))
    assert (tmp_path / "out" / "a" / "clip.mp4").read_bytes() == OLD
    assert sorted(p.name for p in (tmp_path / "out" / "a").iterdir()) == ["clip.mp4"]
    found = out.lookup("a/clip.mp4")
    assert found is not None and found.record.sha256 == record(OLD).sha256


def test_a_failure_mid_write_of_a_first_clip_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = DirectoryPublisher(tmp_path / "out")

    def fail() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish.shutil, "copyfileobj", half_then(fail))
    with pytest.raises(Exception, match="space"):
        out.publish(source(tmp_path, NEW), "clip.mp4", record(NEW))
    assert not (tmp_path / "out" / "clip.mp4").exists()
    assert out.lookup("clip.mp4") is None


def test_a_reader_racing_the_writer_sees_old_or_new_never_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = DirectoryPublisher(tmp_path / "out")
    out.publish(source(tmp_path, OLD), "clip.mp4", record(OLD))
    final = tmp_path / "out" / "clip.mp4"
    halfway, seen = threading.Event(), threading.Event()
    reads: list[bytes] = []

    def reader() -> None:
        assert halfway.wait(10)
        reads.append(final.read_bytes())  # while the writer is halfway through
        seen.set()

    def pause() -> None:
        halfway.set()
        assert seen.wait(10)

    monkeypatch.setattr(publish.shutil, "copyfileobj", half_then(pause))
    thread = threading.Thread(target=reader)
    thread.start()
    out.publish(source(tmp_path, NEW), "clip.mp4", record(NEW))
    thread.join(10)
    monkeypatch.setattr(publish.shutil, "copyfileobj", shutil.copyfileobj)
    assert reads == [OLD]
    assert final.read_bytes() == NEW
