"""The error every problem with a model file becomes."""


class ModelFileError(ValueError):
    """A model file is corrupted, truncated, of another kind or of an unknown version."""
