"""The exact Kubernetes API permissions the operator and the worker use.

The Helm chart renders its ClusterRole/Role and the worker Role from the same rules, and a test
compares them, so a new API call needs a new rule here (and nowhere a wildcard).
tests/operatorunit/test_rbac_calls.py derives the operator's calls from its source: a rule no
code uses fails it, and so does a call no rule grants.
"""

from __future__ import annotations

from typing import Any

Rule = dict[str, Any]

OPERATOR_RULES: list[Rule] = [
    # list/watch: kopf's watch and the startup count; delete: ttlSecondsAfterFinished
    {
        "apiGroups": ["videojobs.io"],
        "resources": ["videoprocessingjobs"],
        "verbs": ["list", "watch", "delete"],
    },
    {
        "apiGroups": ["videojobs.io"],
        "resources": ["videoprocessingjobs/status"],
        "verbs": ["patch"],
    },
    {
        # The Job's owner reference sets blockOwnerDeletion: with the
        # OwnerReferencesPermissionEnforcement admission plugin (OpenShift, hardened clusters)
        # that needs update on the owner's finalizers, or the Job create is refused with 403.
        "apiGroups": ["videojobs.io"],
        "resources": ["videoprocessingjobs/finalizers"],
        "verbs": ["update"],
    },
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["get", "list", "watch", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    # get: transcripts in ConfigMaps; create: each run's input ConfigMap (owned by its Job);
    # delete: a stale input left by an earlier Job of the same name (kube.create_configmap)
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "delete"]},
    # create: the operator's and kopf's Events (core/v1)
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    # list: why a Job's pod never started (FailedCreate, FailedMount), read at the pending timeout
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
]
"""What the operator does in every watched namespace."""

WORKER_RBAC_RULES: list[Rule] = [
    # patch: bring the annotations and imagePullSecrets of a ServiceAccount it made up to date
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "create", "patch"]},
    # patch: an existing worker Role it made gets today's WORKER_RULES
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles"],
        "verbs": ["get", "create", "patch"],
    },
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["rolebindings"],
        "verbs": ["get", "create"],
    },
]
"""Extra rules when the operator provisions the worker ServiceAccount per namespace."""

LEADER_ELECTION_RULES: list[Rule] = [
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        # patch, not update: renewals are merge patches with resourceVersion as precondition
        "verbs": ["get", "create", "patch"],
    },
]
"""In the operator's own namespace, for leader election between replicas."""

WORKER_RULES: list[Rule] = [
    {
        "apiGroups": ["videojobs.io"],
        "resources": ["videoprocessingjobs/status"],
        "verbs": ["patch"],
    },
]
"""What a worker pod does: patch the status of its resource, nothing else."""
