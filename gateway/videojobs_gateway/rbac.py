"""The exact Kubernetes API permissions the gateway's ServiceAccount needs, per auth mode.

The chart renders the gateway's Roles and ClusterRole from
``charts/videojobs/files/gateway-rbac.yaml``, which is this module's output
(``python -m videojobs_gateway.rbac > charts/videojobs/files/gateway-rbac.yaml``);
``tests/chart/test_gateway_chart.py`` fails when it is stale, and ``tests/gateway`` runs the
gateway against the strict emulator with the rendered rules (a missing rule is a 403 there).

- every mode: read VideoProcessingJobs (``get`` for an Idempotency-Key replay, ``list`` and
  ``watch`` for the cache) in each served namespace;
- ``none``, ``apikey``, ``header``: the gateway writes as itself, so ``create``, ``patch``
  (cancel, retry) and ``delete`` too;
- ``client``: writes are made with the caller's own token, so the ServiceAccount gets no write
  verb on jobs and no ``impersonate`` right at all (impersonating ``system:masters`` would make
  it cluster-admin); it gets, cluster-wide, ``tokenreviews`` and ``subjectaccessreviews``
  ``create`` only.

The apikey Secret needs no rule: it is mounted as a volume (kubelet reads it, not the gateway).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

from videojobs.models import GROUP, PLURAL

Rule = dict[str, Any]

READ_RULES: list[Rule] = [
    {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch"]},
]
"""The cache (list + watch) and the Idempotency-Key replay (get), in every served namespace."""

WRITE_RULES: list[Rule] = [
    {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["create", "patch", "delete"]},
]
"""Submit, cancel/retry (merge patch of spec), delete; not in mode client (the caller's token)."""

CLIENT_RULES: list[Rule] = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["subjectaccessreviews"],
        "verbs": ["create"],
    },
]
"""Cluster-wide, mode client only: check the caller's token and rights (reads are served from
the cache, so the gateway asks RBAC itself); writes carry the caller's token."""


def namespace_rules(mode: str) -> list[Rule]:
    """The rules in each namespace the gateway serves (or cluster-wide when it serves all)."""
    if mode == "client":
        return [dict(r) for r in READ_RULES]
    return [{**READ_RULES[0], "verbs": READ_RULES[0]["verbs"] + WRITE_RULES[0]["verbs"]}]


def cluster_rules(mode: str) -> list[Rule]:
    """Cluster-scoped rules (none but in mode client)."""
    return [dict(r) for r in CLIENT_RULES] if mode == "client" else []


HEADER = """\
# Generated from gateway/videojobs_gateway/rbac.py; do not edit. Regenerate with
# `python -m videojobs_gateway.rbac > charts/videojobs/files/gateway-rbac.yaml`.
"""


def render() -> str:
    """The chart's rules file: namespace and cluster rules per auth mode."""
    modes = ("none", "apikey", "header", "client")
    data = {
        "namespace": {m: namespace_rules(m) for m in modes},
        "cluster": {m: cluster_rules(m) for m in modes},
    }
    data = json.loads(json.dumps(data))  # no YAML anchors for shared lists
    return HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


if __name__ == "__main__":
    sys.stdout.write(render())
