"""Saving and loading a fitted model for the command line, in skcreate's pickle-free format.

See :mod:`skcreate.apps.persistence`: loading a model file never runs code from it. Besides the
estimator (whose ``user_col``, ``item_col`` and ``time_col`` name the training file's columns),
the file records the kind of the training times (``"numeric"`` or ``"datetime"``), so that
``recommend`` can refuse histories whose times are of the other kind.
"""

from pathlib import Path

__all__ = ["save_model", "load_model"]


def save_model(model, path, time_kind):
    """Write a fitted estimator to ``path``, with the kind of its training times."""
    from ..persistence import save

    save(model, path, metadata={"time_kind": time_kind})


def load_model(path, allowed_modules=()):
    """Read an estimator written by :func:`save_model` (or ``estimator.save``).

    ``allowed_modules`` are those from which the model's own parts may be imported
    (:func:`skcreate.load`).

    Returns
    -------
    estimator
        Fitted.
    time_kind : str or None
        ``"numeric"`` or ``"datetime"``; None for a model file written without it (by an older
        skcreate or by ``estimator.save``).
    """
    from ..persistence import ModelFileError, load, load_metadata

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model file at {path}; make one with `skcreate fit`.")
    try:
        return (load(path, allowed_modules=allowed_modules),
                load_metadata(path).get("time_kind"))
    except ModelFileError as exc:
        raise ValueError(f"{path} is not a model file written by `skcreate fit`: {exc}") \
            from None
