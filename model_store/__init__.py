"""Versioned, verified storage of trained pipelines."""

from model_store.exceptions import IntegrityError, ModelNotFoundError, ModelStoreError
from model_store.store import LoadedModel, ModelStore

__all__ = ["IntegrityError", "LoadedModel", "ModelNotFoundError", "ModelStore", "ModelStoreError"]
