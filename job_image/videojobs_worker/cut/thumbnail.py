"""Thumbnails: one JPEG frame of a clip."""

from __future__ import annotations

from pathlib import Path

from videojobs.models import ExitCode
from videojobs_worker.errors import WorkerError
from videojobs_worker.ffmpeg import compile_args, run_ffmpeg, seconds_arg


def thumbnail_args(source: Path, at: float, dest: Path, width: int = 640) -> list[str]:
    """Arguments for one JPEG frame at ``at`` seconds, at most ``width`` pixels wide."""
    import ffmpeg as ffmpeg_python

    stream = (
        ffmpeg_python.input(str(source), ss=seconds_arg(max(0.0, at)))
        .filter("scale", f"min({width},iw)", -2)
        .output(str(dest), vframes=1, **{"q:v": 3, "f": "image2", "update": 1})
    )
    return compile_args(stream.overwrite_output())


def make_thumbnail(source: Path, at: float, dest: Path) -> None:
    """Write a JPEG of the frame at ``at`` seconds (the first frame when ``at`` is past the end)."""
    dest = Path(dest)
    for when in (at, 0.0):
        dest.unlink(missing_ok=True)
        run_ffmpeg(thumbnail_args(Path(source), when, dest))
        if dest.exists() and dest.stat().st_size > 0:
            return
    raise WorkerError(ExitCode.MEDIA_TOOL, "NoThumbnail", f"no frame to make {dest.name} from")
