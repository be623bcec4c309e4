"""helm lint, values.schema.json, and the chart's CRD being the repository's CRD."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.chart.chartkit import (
    CHART_DIR,
    CRD_FILE,
    RELEASE_NAMESPACE,
    chart,
    objects,
    render,
    validate_k8s,
)
from tests.chart.test_render import COMBINATIONS

WARNING = 2


@pytest.mark.parametrize("combo", ["default", "namespaced", "everything"])
def test_helm_lint_strict(combo: str) -> None:
    report = helm.lint(CHART_DIR, COMBINATIONS[combo], strict=True, namespace=RELEASE_NAMESPACE)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert problems == []
    assert report["total_charts_linted"] == 1


def test_helm_lint_reports_a_broken_template(tmp_path: Path) -> None:
    """The lint check can fail: a copy of the chart with a bad template is reported."""
    broken = Path(chart().save_dir(tmp_path))
    (broken / "templates" / "broken.yaml").write_text("{{ .Values.nope.deeper }}\n")
    report = helm.lint(broken, strict=True)
    assert report["errors"] or any(m["severity"] >= WARNING for m in report["messages"])


def test_chart_metadata() -> None:
    meta = chart().metadata
    assert meta["apiVersion"] == "v2"
    assert meta["appVersion"] == "0.1.0"
    assert meta["name"] == "videojobs"


def test_chart_crd_is_the_repository_crd() -> None:
    link = CHART_DIR / "files" / "crds" / "videoprocessingjobs.yaml"
    assert link.is_symlink(), "the chart's CRD must stay a symlink to crds/"
    assert link.resolve() == CRD_FILE.resolve()
    assert chart().crds == [], "a crds/ folder would be installed once and never upgraded"


def test_the_crd_is_a_template_that_upgrades_and_is_kept_on_uninstall() -> None:
    """crds.install (default true) renders the repository's CRD, so `helm upgrade` applies a
    changed schema; crds.keep (default true) keeps it, and every resource, on uninstall."""
    repository = yaml.safe_load(CRD_FILE.read_text())
    (crd,) = [o for o in objects() if o["kind"] == "CustomResourceDefinition"]
    assert crd["spec"] == repository["spec"]
    assert crd["metadata"]["name"] == repository["metadata"]["name"]
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    validate_k8s(crd)
    (unkept,) = [
        o for o in objects({"crds": {"keep": False}}) if o["kind"] == "CustomResourceDefinition"
    ]
    assert "helm.sh/resource-policy" not in (unkept["metadata"].get("annotations") or {})
    assert not [
        o for o in objects({"crds": {"install": False}}) if o["kind"] == "CustomResourceDefinition"
    ]


def test_packaged_chart_carries_the_crd_contents(tmp_path: Path) -> None:
    """`helm package` follows the symlink: the archive holds the file itself."""
    archive = helm.package(CHART_DIR, destination=tmp_path)
    with tarfile.open(archive) as tar:
        member = tar.getmember("videojobs/files/crds/videoprocessingjobs.yaml")
        assert member.isfile()
        data = tar.extractfile(member)
        assert data is not None
        assert data.read() == CRD_FILE.read_bytes()
        names = tar.getnames()
    assert "videojobs/values.schema.json" in names
    assert "videojobs/files/rbac.yaml" in names
    with helm.Chart.load(archive) as packaged:
        assert packaged.render(name="vj", namespace=RELEASE_NAMESPACE) == render()


def test_default_values_pass_the_schema() -> None:
    chart().validate_schema(chart().values)
    for values in COMBINATIONS.values():
        chart().validate_schema(chart().merge_values(values))


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"replicaCount": "two"}, "replicaCount"),
    ({"replicaCount": 2, "operator": {"config": {"leaderElection": False}}}, "leaderElection"),
    ({"rbac": {"scope": "namespaced"}}, "namespaces"),
    ({"rbac": {"scope": "everywhere"}}, "scope"),
    ({"operator": {"config": {"workerCpu": "lots"}}}, "workerCpu"),
    ({"operator": {"config": {"workerMemory": 1024}}}, "workerMemory"),
    ({"operator": {"config": {"maxRunningJobs": -1}}}, "maxRunningJobs"),
    ({"operator": {"config": {"namespaces": ["Media"]}}}, "namespaces"),
    ({"operator": {"config": {"allowedNetworks": ["not-a-cidr"]}}}, "allowedNetworks"),
    ({"operator": {"config": {"logLevel": "LOUD"}}}, "logLevel"),
    ({"operator": {"config": {"workerImagePullPolicy": "Sometimes"}}}, "workerImagePullPolicy"),
    ({"operator": {"config": {"progressIntervalSeconds": 0}}}, "progressIntervalSeconds"),
    ({"operator": {"config": {"defaultActiveDeadlineSeconds": 5}}}, "defaultActiveDeadline"),
    ({"operator": {"config": {"metricsPort": 70000}}}, "metricsPort"),
    ({"operator": {"config": {"unknownSetting": 1}}}, "unknownSetting"),
    ({"operatr": {}}, "operatr"),
    ({"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}}, "enabled"),
    ({"clipsPvc": {"accessModes": ["ReadWriteSometimes"]}}, "accessModes"),
    ({"clipsPvc": {"size": "big"}}, "size"),
    ({"image": {"digest": "latest"}}, "digest"),
    ({"s3": {"endpoint": "minio:9000"}}, "endpoint"),
]


@pytest.mark.parametrize(("values", "where"), BAD_VALUES, ids=[w for _, w in BAD_VALUES])
def test_schema_rejects_bad_values(values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as excinfo:
        render(values)
    assert where in str(excinfo.value)


def test_schema_is_json_schema_draft7() -> None:
    import jsonschema

    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(defaults)
