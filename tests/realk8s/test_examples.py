"""Issue 22: after a default ``helm install``, every file in ``examples/`` that the chart can serve
runs to ``Succeeded`` as ``kubectl apply`` would create it, with its clips on the claim the chart
created, and NOTES.txt names that claim in the namespace where the chart created it.

The chart is installed with its defaults; only what this machine needs differs (the CRD is the
session's already, the images are the node agent's, the sources are served from 127.0.0.1, and
the agent's pods share the host's ports). The claim ``videojobs-clips`` is the chart's PVC; the
test provides only the volume it binds to (a static hostPath PV, as a cluster without a
provisioner would need). Each source URL is rewritten to a local HTTP server serving an 8-minute
generated video with container chapters, long enough for every example's times."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.httpserver import MediaServer
from tests.realk8s.cluster import free_port
from tests.realk8s.conftest import REPO, WORKER_IMAGE, RealCluster
from tests.realk8s.test_chart import helm
from videojobs.models.spec import Output

CLAIM = "videojobs-clips"  # the chart's default clipsPvc.name

# Examples the chart cannot serve here, and why (they are not run, and say so).
NOT_SERVED = {
    "s3-output.yaml": "writes to S3 (storage.s3): no S3 endpoint in this tier",
    "captions-from-source.yaml": "its transcript is the video site's caption tracks "
    "(YouTube), which a plain file server does not offer",
}

CHAPTERS = [(0, 60, "Opening"), (60, 150, "The meadow"), (150, 480, "The chase")]


@pytest.fixture(scope="module")
def long_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 minutes of small video and audio with three MP4 chapters (examples/chapters.yaml)."""
    root = tmp_path_factory.mktemp("examples-media")
    meta = root / "chapters.txt"
    meta.write_text(
        ";FFMETADATA1\n"
        + "".join(
            f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={a * 1000}\nEND={b * 1000}\ntitle={t}\n"
            for a, b, t in CHAPTERS
        )
    )
    out = root / "long.mp4"
    subprocess.run(
        ["nice", "ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10:duration=480",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=480",
         "-i", str(meta), "-map", "0:v", "-map", "1:a", "-map_chapters", "2",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "20", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "24k", "-movflags", "+faststart", str(out)],
        check=True, timeout=300,
    )  # fmt: skip
    return root


@pytest.fixture
def long_served(long_sample: Path) -> Iterator[MediaServer]:
    with MediaServer(long_sample) as server:
        yield server


def examples() -> list[tuple[str, list[dict[str, Any]]]]:
    found = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        found.append((path.name, docs))
    return found


def test_every_example_runs_after_a_default_helm_install(
    real_cluster: RealCluster, ns: str, long_served: MediaServer
) -> None:
    k8s = real_cluster.k8s
    folder = real_cluster.volume(ns, CLAIM, size="100Gi")
    install = helm(
        real_cluster,
        "install",
        "vj-ex",
        str(REPO / "charts" / "videojobs"),
        "--namespace",
        ns,
        "--wait",
        "--timeout",
        "120s",
        "--set",
        "crds.install=false",
        "--set",
        "image.repository=videojobs-operator",
        "--set",
        "image.tag=realk8s",
        "--set",
        f"operator.config.workerImage={WORKER_IMAGE}",
        "--set",
        "operator.config.allowedNetworks={127.0.0.0/8}",
        "--set",
        f"operator.healthPort={free_port()}",
        "--set",
        f"operator.config.metricsPort={free_port()}",
    )
    try:
        # NOTES.txt: the first job goes to the namespace where the chart made the claim it names
        notes = install.stdout
        applied_in = re.search(r"kubectl apply -n (\S+) -f -", notes)
        named = re.search(r"claimName: (\S+)", notes)
        assert applied_in and named, notes
        assert (applied_in.group(1), named.group(1)) == (ns, CLAIM), notes
        real_cluster.wait_bound(ns, CLAIM)  # the chart's claim, bound to the volume

        runs: dict[str, dict[str, Any]] = {}  # resource name -> its spec as applied
        skipped = []
        for file, docs in examples():
            if file in NOT_SERVED:
                skipped.append(file)
                continue
            for doc in docs:
                doc["metadata"]["namespace"] = ns
                if doc["kind"] == "VideoProcessingJob":
                    doc["spec"]["source"]["url"] = long_served.url("long.mp4")
                    runs[doc["metadata"]["name"]] = doc["spec"]
                k8s.create(doc)
        assert sorted(skipped) == sorted(NOT_SERVED)
        assert len(runs) >= 10, sorted(runs)

        def finished() -> dict[str, dict[str, Any]] | None:
            states = {name: k8s.vpj(ns, name).get("status") or {} for name in runs}
            done = all(s.get("phase") in ("Succeeded", "Failed") for s in states.values())
            return states if done else None

        states = k8s.wait("every example to finish", finished, 480, interval=3)
        failed = {n: s for n, s in states.items() if s["phase"] != "Succeeded"}
        logs = "\n".join(
            real_cluster.pod_log(ns, p.metadata.name)[-1500:]
            for p in k8s.core.list_namespaced_pod(ns).items
            if s_job(p) in {s.get("jobName") for s in failed.values()}
        )
        assert not failed, json.dumps(failed, indent=1)[:4000] + "\n" + logs

        for name, spec in runs.items():
            status = states[name]
            out = folder / spec["output"]["storage"]["pvc"]["path"]
            published, planned = (int(x) for x in status["segmentsSummary"].split("/"))
            assert published == planned == len(status["segments"]) > 0, (name, status)
            if "segments" in spec:  # explicit ranges: one clip each
                assert planned == len(spec["segments"]), name
            complete = [c for c in status["conditions"] if c["type"] == "Complete"]
            assert complete and complete[0]["status"] == "True", (name, status["conditions"])
            path = spec["output"]["storage"]["pvc"]["path"]
            assert status["manifestUri"].endswith(f"{path}/manifest.json"), status["manifestUri"]
            manifest = json.loads((out / "manifest.json").read_text())
            assert len(manifest["segments"]) == planned, name
            formats = Output.model_validate(spec["output"]).formats  # the default: mp4
            for seg in status["segments"]:
                videos = [f for f in seg["files"] if f["kind"] == "video"]
                assert sorted(f["format"] for f in videos) == sorted(formats), (name, seg)
                for f in videos:
                    # the file the status names is on the claim, as big as it says
                    rel = f["uri"].split("/output/", 1)[1]
                    on_claim = folder / rel
                    assert on_claim.is_file(), (name, f["uri"])
                    assert on_claim.stat().st_size == f["bytes"] > 0, (name, f["uri"])
                    assert on_claim.stat().st_uid == 10001
        chapters = states["lecture-by-chapters"]
        assert [s["title"] for s in chapters["segments"]] == [t for _, _, t in CHAPTERS]
    finally:
        helm(real_cluster, "uninstall", "vj-ex", "--namespace", ns, "--wait")


def s_job(pod: Any) -> str | None:
    return (pod.metadata.labels or {}).get("job-name")
