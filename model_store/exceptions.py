"""Errors the model store raises."""


class ModelStoreError(Exception):
    """Base class of model store errors."""


class ModelNotFoundError(ModelStoreError):
    """The named model or version does not exist."""


class IntegrityError(ModelStoreError):
    """A version failed verification and must not be loaded."""
