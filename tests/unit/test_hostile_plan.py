"""The planner's and naming's cases of the hostile corpus, run like the shared runner does.

``tests/unit/test_hostile.py`` (the shared runner) runs every case of ``tests/data/hostile/``;
this test runs the cases this part of the code answers for (``naming-*``, ``plan-*``) and the
generated huge ones, each through ``videojobs validate`` in a subprocess bounded in time and
memory, so they are covered whichever runner is present.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"
CASES = sorted(p for p in HOSTILE.glob("*.yaml") if p.name.startswith(("naming-", "plan-")))
MEMORY_LIMIT = 1 << 30
TIME_LIMIT = 60.0


def _bounded() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videojobs_cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        preexec_fn=_bounded,
        check=False,
    )


def expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: ...'"
    return first.removeprefix("# expect: ")


def test_the_corpus_has_naming_cases() -> None:
    assert any(p.name.startswith("naming-") for p in CASES)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_hostile_case_is_refused_clearly(path: Path) -> None:
    result = validate(path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert expected(path) in output
    assert "Traceback" not in output


def _manifest(tmp: Path, name: str, points: list[dict[str, str]]) -> Path:
    import json

    path = tmp / f"{name}.yaml"
    path.write_text(
        "apiVersion: videojobs.io/v1alpha1\nkind: VideoProcessingJob\n"
        f"metadata: {{name: {name}}}\nspec:\n"
        '  source: {url: "https://media.example.org/video.mp4"}\n'
        "  transcript: {configMapKeyRef: {name: t, key: t.vtt}}\n"
        f"  knowledgePoints: {json.dumps(points)}\n"
        "  output: {storage: {pvc: {claimName: clips}}}\n",
        encoding="utf-8",
    )
    return path


def _vtt(cues: int) -> str:
    from tests.unit.test_bounded import tag

    out = ["WEBVTT", ""]
    for i in range(cues):
        s = i * 2
        out += [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000 --> "
                f"{(s + 1) // 3600:02d}:{(s + 1) // 60 % 60:02d}:{(s + 1) % 60:02d}.000",
                f"cue says {tag(i)} and more", ""]  # fmt: skip
    return "\n".join(out)


def test_generated_transcript_over_the_byte_limit(tmp_path: Path) -> None:
    from videojobs.validation import MAX_TRANSCRIPT_BYTES

    (tmp_path / "t.vtt").write_bytes(b"WEBVTT\n\n" + b"x" * MAX_TRANSCRIPT_BYTES)
    result = validate(_manifest(tmp_path, "huge", [{"id": "a", "title": "A", "start": "0"}]))
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert f"over the limit of {MAX_TRANSCRIPT_BYTES} bytes" in output


def test_generated_transcript_over_the_cue_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import videojobs.planning as planning
    from videojobs.errors import InvalidSpec

    monkeypatch.setattr(planning, "MAX_CUES", 1000)
    spec_points = [{"id": "a", "title": "A", "start": "0"}]
    from videojobs.validation import check_file

    (tmp_path / "t.vtt").write_text(_vtt(1001), encoding="utf-8")
    with pytest.raises(InvalidSpec, match="1001 cues, over the limit of 1000"):
        check_file(_manifest(tmp_path, "many", spec_points))


def test_generated_huge_plan_is_answered_within_bounds(tmp_path: Path) -> None:
    """20,000 cues and 500 quotes (the last one unmatched): refused in bounded time and memory."""
    from tests.unit.test_bounded import tag

    (tmp_path / "t.vtt").write_text(_vtt(20_000), encoding="utf-8")
    points = [
        {"id": f"k{i}", "title": f"K{i}", "quote": f"says {tag(i * 40)} and"} for i in range(499)
    ]
    points.append({"id": "last", "title": "Last", "quote": "never said in this lecture at all"})
    result = validate(_manifest(tmp_path, "plan-huge", points))
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-2000:]
    assert "spec.knowledgePoints[499].quote" in output and "not found" in output
