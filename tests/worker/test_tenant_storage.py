"""Storage a tenant cannot misuse: per-resource default destinations, the S3 guard, re-runs."""

from __future__ import annotations

from pathlib import Path

from videojobs.models import Storage
from videojobs_worker.publish import DirectoryPublisher, publisher_for


def test_publisher_defaults_are_unique_per_resource(tmp_path: Path) -> None:
    storage = Storage.model_validate({"pvc": {"claimName": "c"}})
    one = publisher_for(storage, pvc_root=tmp_path, destination=("ns", "one"))
    two = publisher_for(storage, pvc_root=tmp_path, destination=("ns", "two"))
    assert isinstance(one, DirectoryPublisher) and isinstance(two, DirectoryPublisher)
    assert one.root == tmp_path / "ns" / "one"
    assert two.root == tmp_path / "ns" / "two"
