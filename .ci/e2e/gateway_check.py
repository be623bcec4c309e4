"""The gateway on the kind cluster, as a user of the REST API sees it (kind-e2e.sh runs it).

    python3 gateway_check.py BASE_URL NAMESPACE TOKEN [--other-namespace NS] [--media URL]
                             [--applied NAME ...] [--s3 JSON]

BASE_URL is the gateway Service reached through ``kubectl port-forward``; TOKEN a ServiceAccount
token of a user with a Role on VideoProcessingJobs in NAMESPACE only (auth mode ``client``: the
gateway checks it with a TokenReview and acts as that user by impersonation); ``--applied``
names jobs applied with kubectl that must be listed, the first of them completed. Standard
library only: it runs on the CI runner's python3. Exits non-zero with the first problem found.
``tests/gateway/test_cluster_auth.py`` runs it against the emulator stack, so it can fail.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

API = "/api/v1/videos"
MEDIA = "http://media.videojobs-e2e.svc.cluster.local/talk.mp4"
SUBMISSION: dict[str, Any] = {
    "transcript": [
        {"start_time": 0, "end_time": 4, "text": "Welcome to this short test talk about clips."},
        {"start_time": 4, "end_time": 9, "text": "First we look at how pods get scheduled."},
        {"start_time": 9, "end_time": 12, "text": "Then we talk about storage for the results."},
    ],
    "knowledge_points": [
        {"knowledge_id": "scheduling", "title": "Scheduling", "start_time": 4, "end_time": 9},
        {"knowledge_id": "storage", "title": "Storage", "start_time": "00:00:09"},
    ],
    "output": {"formats": ["mp4"], "precision": "smart"},
}


def s3_spec(media: str, s3: dict[str, Any]) -> dict[str, Any]:
    """The submission as a VideoProcessingJob spec with S3 storage (same two clips)."""
    return {
        "source": {"url": media},
        "segments": [
            {"knowledgeId": "scheduling", "title": "Scheduling", "start": 4, "end": 9},
            {"knowledgeId": "storage", "title": "Storage", "start": 9, "end": 12},
        ],
        "output": {"formats": ["mp4"], "precision": "smart", "storage": {"s3": s3}},
    }


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    base: str,
    path: str,
    token: str | None = None,
    *,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    req = urllib.request.Request(base + path, method=method, headers=dict(headers or {}))
    if token is not None:  # not sent on to a presigned S3 URL (one auth mechanism per request)
        req.add_unredirected_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
        req.data = json.dumps(body).encode()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return Answer(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.headers, e.read())


def expect(answer: Answer, status: int, what: str) -> Answer:
    if answer.status != status:
        sys.exit(f"gateway: {what}: HTTP {answer.status}, expected {status}: {answer.body[:500]!r}")
    return answer


def check(
    base: str,
    ns: str,
    token: str,
    *,
    other_ns: str = "default",
    media: str = MEDIA,
    applied: tuple[str, ...] = ("e2e-pvc", "e2e-s3"),
    s3: dict[str, Any] | None = None,
) -> str:
    """Run every check; return the job id of the submitted (and deleted) job.

    With ``s3`` (a spec's ``output.storage.s3``) the job publishes there and each download is
    a 307 to a presigned URL, followed here like a browser does (Range included).
    """
    deadline = time.monotonic() + 120
    while True:  # the port-forward takes a moment; the cache must be listed
        try:
            if call(base, "/readyz").status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"gateway: /readyz not 200 within 120 s: {call(base, '/readyz').body!r}")
        time.sleep(2)
    q = f"?namespace={ns}"
    expect(call(base, f"{API}/jobs{q}"), 401, "no token")
    expect(call(base, f"{API}/jobs{q}", "not-a-token"), 401, "a token the cluster does not know")
    expect(call(base, f"{API}/jobs?namespace={other_ns}", token), 403, "another namespace")

    # The jobs kubectl applied are the gateway's jobs too: the resource is the store.
    listed = expect(call(base, f"{API}/jobs{q}", token), 200, "list").json()
    names = {j["job_id"] for j in listed["jobs"]}
    if not set(applied) <= names:
        sys.exit(f"gateway: the list lacks the applied jobs: {sorted(names)}")
    for name in applied[:1]:
        status = expect(call(base, f"{API}/status/{name}{q}", token), 200, "status").json()
        if status["status"] != "completed":
            sys.exit(f"gateway: {name} reads {status}")

    submission: dict[str, Any] = {"video_url": media, **SUBMISSION}
    if s3 is not None:  # the spec form, to name the storage (a REST body gets the PVC)
        submission = {"spec": s3_spec(media, s3)}
    key = {"Idempotency-Key": f"e2e-{time.time_ns()}"}
    post = f"{API}/process{q}"

    def submit(what: str) -> Answer:
        return expect(
            call(base, post, token, method="POST", body=submission, headers=key), 202, what
        )

    first = submit("submit")
    job = first.json()["job_id"]
    again = submit("a retried submit")
    if again.json()["job_id"] != job:
        sys.exit(f"gateway: a retried POST made a second job: {job} then {again.json()['job_id']}")
    without_url = {k: v for k, v in SUBMISSION.items() if k != "video_url"}
    bad = call(base, post, token, method="POST", body=without_url)
    if bad.status != 422 or "video_url" not in bad.body.decode():
        sys.exit(f"gateway: an invalid submission: HTTP {bad.status} {bad.body[:300]!r}")

    deadline = time.monotonic() + 600
    while True:
        word = expect(call(base, f"{API}/status/{job}{q}", token), 200, "status").json()
        print(f"gateway job {job}: {word['status']} ({word.get('stage')})", flush=True)
        if word["status"] == "completed":
            break
        if word["status"] in ("failed", "cancelled") or time.monotonic() > deadline:
            sys.exit(f"gateway: job {job} did not complete: {word}")
        time.sleep(5)
    progress = expect(call(base, f"{API}/progress/{job}{q}", token), 200, "progress").json()
    if progress["percent"] != 100 or progress["segments_done"] != progress["segments_total"]:
        sys.exit(f"gateway: progress of a completed job: {progress}")

    results = expect(call(base, f"{API}/results/{job}{q}", token), 200, "results").json()
    files = [f for s in results["segments"] for f in s["files"] if f["kind"] == "video"]
    if len(results["segments"]) != 2 or len(files) != 2:
        sys.exit(f"gateway: results: {json.dumps(results)[:1000]}")
    for f in files:
        path = f"{API}/files/{job}/{f['name']}{q}"
        whole = expect(call(base, path, token), 200, f"download {f['name']}")
        if len(whole.body) != f["bytes"] or hashlib.sha256(whole.body).hexdigest() != f["sha256"]:
            sys.exit(f"gateway: {f['name']}: the bytes served are not the bytes the status lists")
        part = expect(call(base, path, token, headers={"Range": "bytes=100-199"}), 206, "Range")
        if part.body != whole.body[100:200] or not part.headers["Content-Range"].startswith(
            "bytes 100-199/"
        ):
            sys.exit(f"gateway: {f['name']}: Range 100-199 answered {part.headers}")
    expect(call(base, f"{API}/files/{job}/..%2F..%2Fetc%2Fpasswd{q}", token), 404, "traversal")

    expect(call(base, f"{API}/jobs/{job}{q}", token, method="DELETE"), 204, "delete")
    deadline = time.monotonic() + 60
    while call(base, f"{API}/status/{job}{q}", token).status != 404:
        if time.monotonic() > deadline:
            sys.exit(f"gateway: job {job} still readable 60 s after DELETE")
        time.sleep(2)
    # every tenant's job counts: only for a caller (issue 24)
    expect(call(base, "/metrics"), 401, "metrics without a token")
    metrics = call(base, "/metrics", token).body.decode()
    if "videojobs_gateway_requests_total" not in metrics:
        sys.exit("gateway: /metrics has no request counter")
    print(f"gateway OK: job {job} submitted, completed, {len(files)} clips downloaded, deleted")
    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("namespace")
    parser.add_argument("token")
    parser.add_argument("--other-namespace", default="default")
    parser.add_argument("--media", default=MEDIA)
    parser.add_argument("--applied", nargs="*", default=["e2e-pvc", "e2e-s3"])
    parser.add_argument("--s3", type=json.loads, help="output.storage.s3 of the job (JSON)")
    a = parser.parse_args()
    check(a.base, a.namespace, a.token, other_ns=a.other_namespace, media=a.media,
          applied=tuple(a.applied), s3=a.s3)  # fmt: skip


if __name__ == "__main__":
    main()
