"""deploy/k8s renders, every object validates against Kubernetes' schemas, and KEDA's against its CRD."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from jobs.broker import QUEUE
from tests.deploy.kustomize import UnsupportedError, containers, render
from tests.deploy.parsing import ROOT

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.35.0"  # a current release: kubernetes-validate ships its schemas
FOLDERS = {"base": K8S / "base", "local": K8S / "overlays" / "local"}
CRDS = {"ScaledObject": "keda.sh_scaledobjects.yaml", "TriggerAuthentication": "keda.sh_triggerauthentications.yaml"}
SECRET_ENV = {
    "REDIS_URL",
    "API_KEYS",
    "REDIS_PASSWORD",
    "REDISCLI_AUTH",
    "CELERY_BROKER_URL",
    "REDIS_SENTINEL_PASSWORD",
    "WEBHOOK_SECRET",
}


@cache
def rendered(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(FOLDERS[name]))


def by_kind(objects, kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


@cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The CRD's openAPIV3Schema, closed as the API server's strict field validation is: unknown fields fail."""
    crd = yaml.safe_load((K8S / "schemas" / CRDS[kind]).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return _closed(version["schema"]["openAPIV3Schema"])


def _closed(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    open_ = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and not open_:
        closed["additionalProperties"] = False
    return closed


@pytest.mark.parametrize("name", FOLDERS)
def test_every_object_validates_for_a_current_kubernetes(name) -> None:
    objects = rendered(name)
    assert objects
    for obj in objects:
        if obj["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(obj, crd_schema(obj["kind"]))
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_checks_catch_a_misspelt_or_mistyped_field() -> None:
    hpa = by_kind(rendered("base"), "HorizontalPodAutoscaler")["glmq-api"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**hpa, "spec": {**hpa["spec"], "minReplica": 2}}, KUBERNETES_VERSION, strict=True)
    scaled = dict(by_kind(rendered("base"), "ScaledObject")["glmq-worker"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**scaled, "spec": {**scaled["spec"], "minReplicas": 0}}, crd_schema("ScaledObject"))
    trigger = {**scaled["spec"]["triggers"][0], "metadata": {"listName": QUEUE, "listLength": 4}}
    with pytest.raises(jsonschema.ValidationError):  # trigger metadata values are strings
        jsonschema.validate({**scaled, "spec": {**scaled["spec"], "triggers": [trigger]}}, crd_schema("ScaledObject"))


@pytest.mark.parametrize("name", FOLDERS)
def test_workers_scale_on_the_predictions_list_with_a_floor_that_covers_unfinished_jobs(name) -> None:
    objects = rendered(name)
    scaled = by_kind(objects, "ScaledObject")["glmq-worker"]["spec"]
    assert scaled["scaleTargetRef"]["name"] in by_kind(objects, "Deployment")
    redis = [t for t in scaled["triggers"] if t["type"] == "redis"]
    assert [t["metadata"]["listName"] for t in redis] == [QUEUE]
    assert redis[0]["authenticationRef"]["name"] in by_kind(objects, "TriggerAuthentication")
    assert scaled["minReplicaCount"] <= scaled["maxReplicaCount"]  # the CRD's CEL rule, which jsonschema skips
    if scaled["minReplicaCount"] == 0:  # scale to zero only with a trigger that sees unfinished jobs
        assert any("glmq_jobs_unfinished" in t["metadata"].get("query", "") for t in scaled["triggers"])
    else:
        assert "idleReplicaCount" not in scaled  # which would scale to zero below the floor


@pytest.mark.parametrize("name", FOLDERS)
def test_pods_run_as_non_root_read_only_with_requests_limits_and_secrets_from_a_secret(name) -> None:
    objects = rendered(name)
    assert by_kind(objects, "Secret") == {}  # secrets are created apart (README), never in a manifest
    pods = [obj["spec"]["template"]["spec"] for obj in objects if obj["kind"] in ("Deployment", "Job")]
    assert all(pod["securityContext"]["runAsNonRoot"] for pod in pods)
    for container in containers(list(objects)):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert set(container["resources"]) == {"requests", "limits"}
        for env in container.get("env", []):
            if env["name"] in SECRET_ENV:
                assert "value" not in env and "secretKeyRef" in env["valueFrom"], env["name"]


def test_the_api_is_probed_on_health_and_ready_and_scaled_on_cpu() -> None:
    objects = rendered("base")
    (api,) = by_kind(objects, "Deployment")["glmq-api"]["spec"]["template"]["spec"]["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    hpa = by_kind(objects, "HorizontalPodAutoscaler")["glmq-api"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "glmq-api"
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert set(by_kind(objects, "PodDisruptionBudget")) == {"glmq-api", "glmq-worker"}
    assert by_kind(objects, "Job")["glmq-model-init"]["spec"]["template"]["spec"]["containers"][0]["command"][-1] == (
        "bootstrap"
    )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("name", FOLDERS)
def test_the_rendering_equals_kubectl_kustomize(name) -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(FOLDERS[name])], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    key = lambda obj: (obj["kind"], obj["metadata"]["name"])  # noqa: E731
    assert sorted(rendered(name), key=key) == sorted(yaml.safe_load_all(built), key=key)


def test_the_renderer_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nconfigMapGenerator: []\n")
    with pytest.raises(UnsupportedError, match="configMapGenerator"):
        render(tmp_path)
