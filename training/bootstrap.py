"""The approved GLM saved into a model store and promoted: what `make up` and model-init start from."""

from __future__ import annotations

import hashlib

from model_store import ModelStore, artifacts
from training.approved import REFERENCE, build_approved, load_reference, reference_bytes
from training.pipeline import schema


def bootstrap(store: ModelStore, name: str, force: bool = False) -> int | None:
    """Save the approved GLM as a version of `name` and promote it, unless one already serves.

    Return the new version, or None when a version already served and nothing was saved.
    """
    if store.current(name) is not None and not force:
        return None
    reference = load_reference()
    approved = build_approved(reference)
    version = artifacts.save(
        store,
        name,
        approved,
        schema=schema(approved),
        threshold=reference["threshold"],
        metrics={"reported_auc": reference["reported_auc"], "fit": reference["fit"]},
        data_fingerprint={
            "source": f"training/data/{REFERENCE}",
            "sha256": hashlib.sha256(reference_bytes()).hexdigest(),
        },
    )
    store.promote(name, version)
    return version
