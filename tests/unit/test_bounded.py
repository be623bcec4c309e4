"""Transcript parsing and planning in a bounded child process, off the event loop."""

from __future__ import annotations

import asyncio
import random
import string
from typing import Any

from videojobs.bounded import plan_problems, plan_problems_bounded
from videojobs.models import VideoProcessingJobSpec

MIB = 1024 * 1024


def tag(i: int) -> str:
    """A word of its own for cue ``i``."""
    rng = random.Random(i)
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(10))


def vtt(cues: int) -> str:
    lines = ["WEBVTT", ""]
    for i in range(cues):
        s = i * 2
        lines += [
            f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000 --> "
            f"{(s + 2) // 3600:02d}:{(s + 2) // 60 % 60:02d}:{(s + 2) % 60:02d}.000",
            f"cue says {tag(i)} and more here",
            "",
        ]
    return "\n".join(lines)


def spec(points: list[dict[str, Any]], **output: Any) -> VideoProcessingJobSpec:
    return VideoProcessingJobSpec.model_validate(
        {
            "source": {"url": "https://example.org/v.mp4"},
            "transcript": {"configMapKeyRef": {"name": "t", "key": "t.vtt"}},
            "knowledgePoints": points,
            "output": {"storage": {"pvc": {"claimName": "c"}}, **output},
        }
    )


QUOTES = [{"id": f"k{i}", "title": f"K{i}", "quote": f"says {tag(i * 40)} and"} for i in range(50)]


async def ticking(work: Any) -> tuple[Any, int]:
    """Run ``work`` while another coroutine ticks; the ticks prove the loop kept running."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    try:
        result = await work
    finally:
        stop.set()
        await task
    return result, ticks


async def test_the_child_gives_the_same_answer_as_planning_in_process() -> None:
    good = spec(QUOTES[:3])
    text = vtt(200)
    assert await plan_problems_bounded(good, text, "ConfigMap/t[t.vtt]") == []
    bad = spec([{"id": "a", "title": "A", "quote": "nothing like this is ever said"}])
    problems = await plan_problems_bounded(bad, text, "ConfigMap/t[t.vtt]")
    assert problems == plan_problems(bad, text, "ConfigMap/t[t.vtt]")
    assert (
        problems[0].path == "spec.knowledgePoints[0].quote" and "not found" in problems[0].message
    )
    broken = await plan_problems_bounded(good, "WEBVTT\n\n00:00:0x.000 --> 1\nhi\n", "cm")
    assert broken and broken[0].path == "cm"


async def test_over_the_time_budget_is_invalid_spec_and_the_loop_keeps_running() -> None:
    # 100,000 cues: well over 0.3 s even on a quiet machine since parsing got faster (20,000
    # cues fit in 0.3 s there)
    work = plan_problems_bounded(spec(QUOTES), vtt(100_000), "ConfigMap/t[t.vtt]", timeout=0.3)
    problems, ticks = await ticking(work)
    assert [p.path for p in problems] == ["spec.transcript"]
    assert "longer than 0.3 s (the validation time limit)" in problems[0].message
    assert ticks >= 10  # 0.3 s of 5 ms ticks, with slack for a loaded machine


async def test_over_the_memory_budget_is_invalid_spec_and_the_loop_keeps_running() -> None:
    work = plan_problems_bounded(
        spec(QUOTES), vtt(20_000), "ConfigMap/t[t.vtt]", timeout=120, memory=4 * MIB
    )
    problems, ticks = await ticking(work)
    assert [p.path for p in problems] == ["spec.transcript"]
    assert "needs more than 4 MiB (the validation memory limit)" in problems[0].message
    assert ticks >= 1


async def test_one_child_at_a_time() -> None:
    texts = [vtt(300) for _ in range(3)]
    results = await asyncio.gather(
        *(plan_problems_bounded(spec(QUOTES[:2]), t, "cm") for t in texts)
    )
    assert results == [[], [], []]
