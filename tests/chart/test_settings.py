"""Every OperatorSettings field is a documented chart value rendered as VIDEOJOBS_<FIELD>."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
import yaml

from tests.chart.chartkit import CHART_DIR, REPO, objects
from tests.chart.test_rbac import _sync_chart
from tests.chart.test_render import COMBINATIONS
from videojobs_operator.settings import OperatorSettings

FIELDS = OperatorSettings.model_fields
PREFIX = "VIDEOJOBS_"


def camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _values_config() -> dict[str, Any]:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    config: dict[str, Any] = values["operator"]["config"]
    return config


def _env(values: dict[str, Any] | None = None) -> dict[str, str]:
    deployment = next(o for o in objects(values) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if e["name"].startswith(PREFIX)}


def test_values_keys_match_settings_fields() -> None:
    assert set(_values_config()) == {camel(f) for f in FIELDS}


def test_schema_describes_every_setting() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    props = schema["properties"]["operator"]["properties"]["config"]["properties"]
    assert set(props) == {camel(f) for f in FIELDS}
    assert all(p.get("description") for p in props.values())


def test_values_yaml_comments_every_setting() -> None:
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    for field in FIELDS:
        index = next(
            i for i, line in enumerate(lines) if line.strip().startswith(camel(field) + ":")
        )
        assert lines[index - 1].strip().startswith("#"), f"{camel(field)} has no comment"


def _all_set() -> dict[str, Any]:
    """A value for every setting, none of them the default, all valid."""
    return {
        "namespaces": ["media", "team-b"],
        "workerImage": "registry.local/worker:dev",
        "workerImagePullPolicy": "Never",
        "workerServiceAccount": "clipper",
        "workerServiceAccountAnnotations": {"iam.gke.io/gcp-service-account": "clips@p.iam"},
        "workerImagePullSecrets": ["regcred", "mirror"],
        "workerCpu": "2",
        "workerMemory": "3Gi",
        "workerScratchSize": "40Gi",
        "maxRunningJobs": 1000000,
        "maxRunningJobsPerNamespace": 3,
        "maxRunningPods": 64,
        "defaultActiveDeadlineSeconds": 7200,
        "defaultTtlSecondsAfterFinished": 86400,
        "jobTtlSecondsAfterFinished": 60,
        "allowPrivateNetworks": True,
        "allowedNetworks": ["10.96.0.0/12", "fd00::/8"],
        "s3AllowedEndpoints": ["https://minio.storage.svc:9000", "https://s3.example.org"],
        "s3AllowedBuckets": ["clips-{namespace}", "shared"],
        "s3CredentialsSecret": "videojobs-s3",
        "s3NamespacePrefix": True,
        "progressIntervalSeconds": 2.5,
        "progressShardsPerInterval": 0,
        "summedProgressIntervalSeconds": 0,
        "pendingTimeoutSeconds": 120,
        "defaultParallelism": 4,
        "parallelismMinClips": 40,
        "manageWorkerRbac": False,
        "leaderElection": False,
        "leaderElectionNamespace": "locks",
        "metricsPort": 9400,
        "logFormat": "text",
        "logLevel": "DEBUG",
    }


def test_the_all_set_values_cover_every_field_with_a_non_default() -> None:
    given = _all_set()
    assert set(given) == {camel(f) for f in FIELDS}, "add the new setting to _all_set()"
    defaults = OperatorSettings.model_construct()
    for field in FIELDS:
        changed = OperatorSettings.model_validate({field: given[camel(field)]})
        assert getattr(changed, field) != getattr(defaults, field), field


def test_every_setting_reaches_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render with every value set, then parse the env as the operator would."""
    given = _all_set()
    env = _env({"operator": {"config": given}})
    assert set(env) == {PREFIX + f.upper() for f in FIELDS}
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    parsed = OperatorSettings()
    expected = OperatorSettings.model_validate({f: given[camel(f)] for f in FIELDS})
    assert parsed == expected


def test_defaults_reach_the_operator_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """With default values the operator gets its own defaults, except the chart's choices."""
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    env = _env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert OperatorSettings() == OperatorSettings.model_construct(), env
    # null values (optional settings) are left to the operator.
    assert PREFIX + "DEFAULT_TTL_SECONDS_AFTER_FINISHED" not in env
    assert PREFIX + "LEADER_ELECTION_NAMESPACE" not in env


def test_values_defaults_equal_settings_defaults() -> None:
    config = _values_config()
    defaults = OperatorSettings().model_dump()
    chart_computed = {"workerImage", "manageWorkerRbac"}  # derived from appVersion / RBAC mode
    for field in FIELDS:
        key = camel(field)
        if key in chart_computed:
            continue
        assert config[key] == defaults[field], f"values.yaml {key}={config[key]!r}"


def test_chart_chosen_settings() -> None:
    env = _env(COMBINATIONS["namespaced"])
    assert env[PREFIX + "MANAGE_WORKER_RBAC"] == "false"
    env = _env()
    assert env[PREFIX + "MANAGE_WORKER_RBAC"] == "true"
    assert env[PREFIX + "WORKER_IMAGE"] == OperatorSettings().worker_image


def test_configuration_doc_lists_every_setting_and_value() -> None:
    doc = (REPO / "docs" / "configuration.md").read_text()
    for field in FIELDS:
        assert f"`{PREFIX}{field.upper()}`" in doc, f"{PREFIX}{field.upper()} undocumented"
        assert f"`operator.config.{camel(field)}`" in doc
    documented = set(re.findall(r"`(VIDEOJOBS_[A-Z_]+)`", doc)) - {
        "VIDEOJOBS_INPUT",
        "VIDEOJOBS_INPUT_FILE",
    }
    assert documented <= {PREFIX + f.upper() for f in FIELDS}, "doc lists a removed setting"


def test_configuration_doc_tables_are_current() -> None:
    sync = _sync_chart()
    assert sync.render_config_doc() == (REPO / "docs" / "configuration.md").read_text(), (
        "docs/configuration.md tables are stale: run python3 charts/tools/sync_chart.py"
    )
    doc = (REPO / "docs" / "configuration.md").read_text()
    for key in ("operator.config.maxRunningJobs", "operator.livenessProbe", "s3.existingSecret"):
        assert f"`{key}`" in doc


def test_worker_account_settings_join_the_worker_rbac_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """workerRbac.imagePullSecrets/serviceAccountAnnotations (for the chart's own worker
    ServiceAccounts) reach the operator too, for the ServiceAccounts it creates itself."""
    values = {
        "workerRbac": {
            "imagePullSecrets": [{"name": "regcred"}],
            "serviceAccountAnnotations": {"a": "1"},
        },
        "operator": {"config": {"workerImagePullSecrets": ["mirror"]}},
    }
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in _env(values).items():
        monkeypatch.setenv(name, value)
    parsed = OperatorSettings()
    assert parsed.worker_image_pull_secrets == ["regcred", "mirror"]
    assert parsed.worker_service_account_annotations == {"a": "1"}
