"""Saving and loading a fitted model for the command line, in skcreate's pickle-free format.

See :mod:`skcreate.persistence`: loading a model file never runs code from it.
"""

from pathlib import Path

from ..persistence import ModelFileError, load, save

__all__ = ["save_model", "load_model"]


def save_model(model, path):
    """Write a fitted estimator to ``path``."""
    save(model, path)


def load_model(path):
    """Read an estimator written by :func:`save_model`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model file at {path}; make one with `skcreate fit`.")
    try:
        return load(path)
    except ModelFileError as exc:
        raise ValueError(f"{path} is not a model file written by `skcreate fit`: {exc}") \
            from None
