"""The operator validates transcripts and plans off its event loop, within budgets."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.test_bounded import QUOTES, ticking, vtt
from videojobs_operator.metrics import Metrics
from videojobs_operator.reconcile import Reconciler
from videojobs_operator.settings import OperatorSettings


class FakeKube:
    """Only what ``Reconciler._validate`` reads: ConfigMaps."""

    def __init__(self, configmaps: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.configmaps = configmaps

    async def read_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.configmaps.get((namespace, name))


def resource(points: list[dict[str, Any]], naming: str | None = None) -> dict[str, Any]:
    output: dict[str, Any] = {"storage": {"pvc": {"claimName": "c"}}}
    if naming is not None:
        output["naming"] = naming
    return {
        "metadata": {"namespace": "tenant-a", "name": "bomb", "generation": 1},
        "spec": {
            "source": {"url": "https://example.org/v.mp4"},
            "transcript": {"configMapKeyRef": {"name": "t", "key": "t.vtt"}},
            "knowledgePoints": points,
            "output": output,
        },
    }


def reconciler(text: str) -> Reconciler:
    kube = FakeKube({("tenant-a", "t"): {"data": {"t.vtt": text}}})
    return Reconciler(OperatorSettings(), kube, Metrics())  # type: ignore[arg-type]


async def test_a_format_spec_bomb_is_invalid_spec_at_once() -> None:
    r = reconciler(vtt(10))
    for bomb in ("{index:>99999999}", "{start:.99999999f}"):
        spec, problems, waiting = await asyncio.wait_for(
            r._validate(resource(QUOTES[:1], naming=bomb)), 5
        )
        assert spec is None and waiting is None
        assert problems[0].path == "spec.output.naming"
        assert "over the limit of" in problems[0].message


async def test_a_big_transcript_is_planned_off_the_loop() -> None:
    r = reconciler(vtt(20_000))
    (spec, problems, waiting), ticks = await ticking(r._validate(resource(QUOTES)))
    assert problems == [] and spec is not None and waiting is None
    assert ticks >= 3  # the loop ran other coroutines meanwhile


async def test_a_plan_over_the_budget_ends_invalid_spec(monkeypatch: Any) -> None:
    import videojobs.bounded as bounded

    monkeypatch.setattr(bounded, "VALIDATION_MEMORY", 4 * 1024 * 1024)
    r = reconciler(vtt(20_000))
    (spec, problems, waiting), ticks = await ticking(r._validate(resource(QUOTES)))
    assert spec is None and waiting is None
    assert problems[0].path == "spec.transcript"
    assert "the validation memory limit" in problems[0].message
    assert ticks >= 1


async def test_a_binary_data_transcript_is_decoded_like_the_workers() -> None:
    """A ConfigMap ``binaryData`` key (a transcript in another encoding, issue 27) is decoded
    with transcript.encoding (else BOM, UTF-8, detected) before it is planned, as the worker
    decodes the file it mounts; bytes that do not decode are an invalid spec naming it."""
    import base64

    lines = ["Příliš žluťoučký kůň úpěl ďábelské ódy.", "Zażółć gęślą jaźń, łódź i śnieg."]
    lines += ["Árvíztűrő tükörfúrógép és ő.", "Děkuji za pozornost, uvidíme se zítra."]
    text = "WEBVTT\n\n" + "\n".join(
        f"00:00:0{n}.000 --> 00:00:0{n}.900\n{t}\n" for n, t in enumerate(lines, start=1)
    )
    data = base64.b64encode(text.encode("windows-1250")).decode()
    kube = FakeKube({("tenant-a", "t"): {"binaryData": {"t.vtt": data}}})
    r = Reconciler(OperatorSettings(), kube, Metrics())  # type: ignore[arg-type]
    quoted = [{"id": "q", "title": "Q", "quote": lines[2]}]
    spec, problems, waiting = await r._validate(resource(quoted))
    assert problems == [] and spec is not None and waiting is None
    wrong = resource(quoted)
    wrong["spec"]["transcript"]["encoding"] = "utf-8"
    spec, problems, waiting = await r._validate(wrong)
    assert spec is None and waiting is None
    assert problems[0].path == "ConfigMap/t[t.vtt]"
    assert "cannot decode the transcript as utf-8 (" in problems[0].message
