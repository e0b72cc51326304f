"""Versioned, verified storage of trained pipelines.

`ModelStore` is the catalog and imports nothing heavy; `model_store.artifacts` saves and loads pipelines.
"""

from model_store.exceptions import IntegrityError, ModelNotFoundError, ModelStoreError
from model_store.store import NAME_PATTERN, ModelStore

__all__ = ["NAME_PATTERN", "IntegrityError", "ModelNotFoundError", "ModelStore", "ModelStoreError"]
