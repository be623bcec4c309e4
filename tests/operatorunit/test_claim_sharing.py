"""A sharded run on a claim that several nodes cannot mount read-write is refused (issue 28)."""

from __future__ import annotations

from typing import Any

from videojobs_operator.storage_policy import claim_sharing_problem


def claim(requested: list[str], bound: list[str] | None = None) -> dict[str, Any]:
    status = {"phase": "Bound", "accessModes": bound} if bound is not None else {}
    return {"metadata": {"name": "clips"}, "spec": {"accessModes": requested}, "status": status}


def test_only_a_read_write_many_volume_takes_shards() -> None:
    for modes in (["ReadWriteOnce"], ["ReadWriteOncePod"], ["ReadOnlyMany"]):
        problem = claim_sharing_problem(claim(modes, modes), "clips", 4)
        assert problem is not None and problem.path == "spec.parallelism"
        assert "'clips'" in problem.message and modes[0] in problem.message
        assert "ReadWriteMany" in problem.message
    assert claim_sharing_problem(claim(["ReadWriteMany"], ["ReadWriteMany"]), "clips", 4) is None


def test_the_bound_volumes_modes_decide_and_an_unbound_claim_its_request() -> None:
    # requested RWO, bound to a volume that is RWX too (an NFS PV): several nodes may mount it
    both = ["ReadWriteOnce", "ReadWriteMany"]
    assert claim_sharing_problem(claim(["ReadWriteOnce"], both), "clips", 4) is None
    assert claim_sharing_problem(claim(["ReadWriteOnce"]), "clips", 4) is not None
    assert claim_sharing_problem(claim(["ReadWriteMany"]), "clips", 4) is None


def test_one_pod_or_no_claim_is_not_judged() -> None:
    assert claim_sharing_problem(claim(["ReadWriteOnce"], ["ReadWriteOnce"]), "clips", 1) is None
    assert claim_sharing_problem(None, "clips", 4) is None
