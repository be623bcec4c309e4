"""A fake node for scale runs (KWOK's way): pods bound to it "run" without any process.

The operator benchmark on the real control plane (``benchmarks/bench_operator.py --server
real``) creates thousands of Jobs; starting a worker for each would measure the worker, not the
operator. This agent registers a Node (as ``system:node:<name>``, like the node agent) and, for
every pod the scheduler binds to it, writes the status a kubelet writes for a container that
ran ``--run-ms`` and exited 0: ``Running``, then ``Succeeded`` with ``containerStatuses``
terminated (``Completed``, exit code 0). The real Job controller then counts the pod and marks
the Job ``Complete``. A pod being deleted is removed at once (grace 0). Nothing else of the node
agent (volumes, tokens, processes) is done: nothing of the worker runs.

Run: ``python -m tests.realk8s.fastnode --kubeconfig K --node N [--run-ms 50] [--threads 8]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.realk8s.nodeagent import Agent, now

log = logging.getLogger("fastnode")


class FastAgent(Agent):
    def __init__(self, api: client.ApiClient, node: str, run_ms: int, threads: int) -> None:
        super().__init__(api, node, Path("/nonexistent"), "127.0.0.1", 0, {})
        self.run_s = run_ms / 1000
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="pod")
        self.started: set[str] = set()
        self.done = 0

    def heartbeat(self) -> None:
        super().heartbeat()
        # room for every pod of a scale run (the scheduler counts the ones not finished)
        capacity = {"cpu": "1000", "memory": "4Ti", "pods": "5000", "ephemeral-storage": "1Pi"}
        self.core.patch_node_status(
            self.node, {"status": {"capacity": capacity, "allocatable": capacity}}
        )

    def seen(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            self.pool.submit(self._final_delete, pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        with self.lock:
            if phase in ("Succeeded", "Failed") or meta["uid"] in self.started:
                return
            self.started.add(meta["uid"])
        self.pool.submit(self._run, pod)

    def gone(self, pod: dict[str, Any]) -> None:
        with self.lock:
            self.started.discard(pod["metadata"]["uid"])

    def _status(self, pod: dict[str, Any], phase: str, state: dict[str, Any]) -> None:
        meta = pod["metadata"]
        statuses = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "ready": phase == "Running",
                "started": phase == "Running",
                "restartCount": 0,
                "state": state,
            }
            for c in pod["spec"]["containers"]
        ]
        old = [
            c
            for c in (pod.get("status") or {}).get("conditions") or []
            if c["type"] not in ("Ready", "ContainersReady", "Initialized")
        ]
        ready = "True" if phase == "Running" else "False"
        status = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "startTime": (pod.get("status") or {}).get("startTime") or now(),
            "conditions": [
                *old,
                {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
                {"type": "Ready", "status": ready, "lastTransitionTime": now()},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": now()},
            ],
            "containerStatuses": statuses,
        }
        for attempt in range(5):
            try:
                self.core.patch_namespaced_pod_status(
                    meta["name"], meta["namespace"], {"status": status}
                )
                return
            except ApiException as exc:
                if exc.status == 404:
                    return
                log.warning("status of %s/%s: %s", meta["namespace"], meta["name"], exc)
                time.sleep(0.5 * (attempt + 1))

    def _run(self, pod: dict[str, Any]) -> None:
        try:
            started = now()
            self._status(pod, "Running", {"running": {"startedAt": started}})
            time.sleep(self.run_s)
            done = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": started,
                    "finishedAt": now(),
                    "containerID": f"fake://{pod['metadata']['uid']}",
                }
            }
            self._status(pod, "Succeeded", done)
            with self.lock:
                self.done += 1
        except Exception:
            log.exception("pod %s", pod["metadata"]["name"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--run-ms", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    api = config.new_client_from_config(config_file=args.kubeconfig)
    agent = FastAgent(api, args.node, args.run_ms, args.threads)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    agent.run()


if __name__ == "__main__":
    main()
