"""Saving and loading a fitted model for the command line.

One function pair, so that the format can change in one place. Today it is pickle: load only
files you made yourself, since unpickling can run code from the file.
"""

import pickle
from pathlib import Path

__all__ = ["save_model", "load_model"]


def save_model(model, path):
    """Write a fitted estimator to ``path``."""
    Path(path).write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def load_model(path):
    """Read an estimator written by :func:`save_model`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model file at {path}; make one with `skcreate fit`.")
    try:
        model = pickle.loads(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise ValueError(f"{path} is not a model file written by `skcreate fit`: {exc}") from exc
    if not hasattr(model, "recommend"):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a recommender.")
    return model
