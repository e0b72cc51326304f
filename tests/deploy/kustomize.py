"""A pure-Python rendering of the kustomize features deploy/k8s uses, and nothing more.

Supported: resources (files and folders), namespace, labels (metadata only), images (newName,
newTag) and patches given as JSON 6902 operations on a target kind and name. Any other field of a
kustomization is refused, so a manifest change that needs more cannot render silently wrong.
tests/deploy/test_k8s.py also compares this rendering with `kubectl kustomize` where kubectl exists.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
POD_TEMPLATE_PATHS = {"Deployment": ("spec", "template"), "Job": ("spec", "template")}


class UnsupportedError(ValueError):
    """The kustomization uses a feature this renderer does not have."""


def render(folder: Path) -> list[dict[str, Any]]:
    """Return the objects `kustomize build folder` would, in the order of their resources."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise UnsupportedError(f"{folder}: unsupported kustomization fields {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        path = folder / resource
        if path.is_dir():
            objects += render(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for label in spec.get("labels", []):
        if set(label) != {"pairs"}:
            raise UnsupportedError(f"{folder}: labels support pairs only, not {sorted(label)}")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        if set(image) - {"name", "newName", "newTag"}:
            raise UnsupportedError(f"{folder}: images support name, newName and newTag only")
        for container in containers(objects):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                tag = image.get("newTag", tag)
                container["image"] = image.get("newName", name) + (f":{tag}" if tag else "")
    for patch in spec.get("patches", []):
        if set(patch) != {"target", "patch"} or set(patch["target"]) - {"kind", "name"}:
            raise UnsupportedError(f"{folder}: patches need a target (kind, name) and JSON 6902 operations")
        targets = [obj for obj in objects if _matches(obj, patch["target"])]
        if not targets:
            raise UnsupportedError(f"{folder}: patch target {patch['target']} matches nothing")
        for obj in targets:
            for operation in yaml.safe_load(patch["patch"]):
                _apply(obj, operation)
    return objects


def containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return every container (and init container) of the objects that hold a pod template."""
    found = []
    for obj in objects:
        path = POD_TEMPLATE_PATHS.get(obj["kind"])
        if path is None:
            continue
        pod = obj
        for step in path:
            pod = pod[step]
        found += pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
    return found


def _matches(obj: dict[str, Any], target: dict[str, str]) -> bool:
    return all((obj["kind"] if key == "kind" else obj["metadata"]["name"]) == value for key, value in target.items())


def _apply(obj: dict[str, Any], operation: dict[str, Any]) -> None:
    op, path = operation["op"], operation["path"]
    if op not in ("add", "replace", "remove"):
        raise UnsupportedError(f"JSON patch op {op!r} is not supported")
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in path.lstrip("/").split("/")]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op == "remove":
            del node[index]
        elif op == "add":
            node.insert(index, copy.deepcopy(operation["value"]))
        else:
            node[index] = copy.deepcopy(operation["value"])
        return
    if op in ("replace", "remove") and last not in node:
        raise KeyError(f"JSON patch {op} of missing {path}")
    if op == "remove":
        del node[last]
    else:
        node[last] = copy.deepcopy(operation["value"])
