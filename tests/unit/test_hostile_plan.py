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
        [sys.executable, "-m", "videojobs.cli", "validate", str(path)],
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
