"""Saving fitted recommenders without pickle: the model-file format and ``save``.

A model file is a zip archive of these members, each stored once:

- ``manifest.json``: format version, skcreate / torch / numpy versions, estimator class,
  ``get_params()``, the fitted scalar attributes and curves, how each fitted array and id index
  is stored, the SHA-256 of ``arrays.npz`` and ``weights.pt`` and the caller's ``metadata``
  (optional);
- ``manifest.sha256``: the SHA-256 of ``manifest.json`` (64 hex digits), so that every member
  is covered by a checksum (format version 2 on; version 1 files, without it, still load);
- ``arrays.npz``: fitted arrays and id mappings, written and read with ``allow_pickle=False``;
  string ids are stored as their UTF-8 bytes and offsets, so that any str round-trips exactly;
- ``weights.pt`` (neural estimators): the torch ``state_dict``, read with
  ``torch.load(weights_only=True)``;
- ``optimizer.pt`` (neural estimators, format version 3 on): the optimiser's ``state_dict``,
  from which ``partial_fit`` continues, read the same way.

``save`` writes a temporary file next to the target, fsyncs it and renames it over the target,
so a reader sees either the previous file or the new one, never a partial one. Reading is
:mod:`skcreate.apps.persistence`'s (it knows the estimator classes; this module knows none, so
that every estimator's ``save`` can use it).
"""


import contextlib
import hashlib
import io
import json
import numbers
import os
import secrets
import stat
import sys
import zipfile

import numpy as np
import pandas as pd
import torch

from .._version import __version__
from ..data.interactions import Interactions

__all__ = ["FORMAT_VERSION", "ModelFileError", "save"]

# version 2: manifest.sha256 and UTF-8 string ids; version 3: optimizer.pt; versions 1 and 2
# still load
FORMAT_VERSION = 3
_MANIFEST, _MANIFEST_SUM, _ARRAYS, _WEIGHTS, _OPTIMIZER = (
    "manifest.json", "manifest.sha256", "arrays.npz", "weights.pt", "optimizer.pt")
_MEMBERS = (_MANIFEST, _MANIFEST_SUM, _ARRAYS, _WEIGHTS, _OPTIMIZER)
# The fitted attributes each estimator's fit sets: (needed to serve, training record). A file
# may only name these (a subset of the record, for files from before an attribute existed);
# save refuses an attribute missing here, so the table cannot fall behind fit unnoticed.
_SERVING = frozenset({"filter_seen_", "interactions_", "item_ids_", "item_popularity_",
                      "n_items_"})
_NEURAL = _SERVING | {"device_", "module_", "train_user_ids_"}
_TRAINING_RECORD = frozenset({"best_epoch_", "epoch_seconds_", "epoch_stages_", "interrupted_",
                              "loss_curve_", "loss_terms_", "n_epochs_", "resumed_epochs_",
                              "validation_scores_", "world_size_"})
# what partial_fit checks (absent from files written before it)
_UPDATE = frozenset({"fit_params_", "time_dtype_"})
# the optimiser's state, which partial_fit continues from
_NEURAL_RECORD = _TRAINING_RECORD | _UPDATE | {"optimizer_state_"}
_FITTED = {
    "PopularRecommender": (_SERVING, _UPDATE),
    "RandomRecommender": (_SERVING | {"seed_"}, _UPDATE),
    "PopRandomRecommender": (_SERVING | {"seed_"}, _UPDATE),
    "PureSVDRecommender": (_SERVING | {"item_factors_"}, _UPDATE),
    "ALSRecommender": (_SERVING | {"item_factors_", "user_factors_"}, _UPDATE),
    "BPRRecommender": (_SERVING | {"item_factors_", "user_factors_"}, _UPDATE),
    "SASRecRecommender": (_NEURAL, _NEURAL_RECORD),
    "LightGCNRecommender": (_NEURAL, _NEURAL_RECORD),
    "GraphRecommender": (_NEURAL, _NEURAL_RECORD),
    "UltraGCNRecommender": (_NEURAL, _NEURAL_RECORD),
    "CREATERecommender": (_NEURAL, _NEURAL_RECORD | {"warmup_epochs_"}),
}


class ModelFileError(ValueError):
    """A model file that cannot be loaded: unknown format, missing part, bad checksum."""


def _component_classes():
    from ..nn.registry import BUILT_IN_PARTS
    from ..training import Trainer

    return {cls.__name__: cls for cls in (*BUILT_IN_PARTS, Trainer)}


def _is_plain(value):
    if value is None or isinstance(value, (bool, str, np.bool_)):
        return True
    if isinstance(value, numbers.Number):
        return not isinstance(value, complex)
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _plain(value):
    """JSON-ready copy of a plain value (numpy scalars to Python)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _part_path(name, cls):
    """``module:QualName`` of a user's part class, checked to lead back to it at load."""
    module, qualname = cls.__module__, cls.__qualname__
    found = sys.modules.get(module)
    for attribute in qualname.split("."):
        found = getattr(found, attribute, None)
    if "<locals>" in qualname or found is not cls:
        raise ValueError(f"Parameter {name}: the part class {qualname} cannot be found again by "
                         f"its import path {module}:{qualname} (it is defined inside a function "
                         "or replaced since); define it at the top level of a module to save "
                         "the model, or use pickle.")
    return f"{module}:{qualname}"


def _part_bases():
    """What a saved part may be: a torch part, or the trainer."""
    from ..nn.component import Component
    from ..training import Trainer

    return Component, Trainer


def _encode_params(estimator):
    params, components = {}, _component_classes()
    for name, value in estimator.get_params(deep=False).items():
        if getattr(value, "callbacks", None) is not None:
            raise ValueError(f"callbacks are training hooks, not part of a fitted model: set "
                             f"{name}__callbacks=None before save (or use pickle).")
        if _is_plain(value):
            params[name] = _plain(value)
        elif isinstance(value, _part_bases()):
            cls = type(value)
            # built-in parts by their name; a user's by import path, loaded only if allowed
            path = cls.__name__ if components.get(cls.__name__) is cls else _part_path(name, cls)
            part_params = value.get_params()
            if not _is_plain(part_params):
                raise ValueError(f"Parameter {name}={value!r}: a saved part's parameters must "
                                 "be plain values (numbers, strings, booleans, None, lists, "
                                 "dicts); save the model with pickle instead.")
            params[name] = {"__component__": path, "params": _plain(part_params)}
        else:
            raise ValueError(f"Parameter {name}={value!r} is an object skcreate cannot "
                             "describe without pickle (neither a plain value, a "
                             "skcreate.nn.Component nor a skcreate.training.Trainer); save the "
                             "model with pickle instead.")
    return params


class _Arrays:
    """Collects named numpy arrays and describes indexes and interactions by them."""

    def __init__(self, arrays=None):
        self.arrays = {} if arrays is None else arrays

    def put(self, key, array):
        array = np.asarray(array)
        if array.dtype == object:
            raise ValueError(f"{key}: an object array cannot be saved without pickle.")
        self.arrays[key] = array
        return key

    def put_index(self, key, index):
        """Spec of a pandas Index whose values round-trip exactly (ids such as "001",
        int64 near 2**63, categoricals)."""
        dtype = index.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            return {"kind": "categorical", "ordered": bool(dtype.ordered),
                    "codes": self.put(f"{key}.codes", index.codes),
                    "categories": self.put_index(f"{key}.categories", dtype.categories)}
        values = index.to_numpy()
        if values.dtype == object or pd.api.types.is_string_dtype(dtype):
            kinds = {type(v) for v in values}
            if kinds <= {str}:
                # UTF-8 bytes and offsets: numpy's fixed-width str arrays drop trailing NULs
                # ("a\x00" would load as "a"); surrogatepass keeps any Python str
                encoded = [value.encode("utf-8", "surrogatepass") for value in values]
                offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
                np.cumsum([len(b) for b in encoded], out=offsets[1:])
                return {"kind": "utf8", "dtype": str(dtype),
                        "bytes": self.put(f"{key}.utf8", np.frombuffer(b"".join(encoded),
                                                                       dtype=np.uint8)),
                        "offsets": self.put(f"{key}.offsets", offsets)}
            if all(issubclass(k, numbers.Integral) for k in kinds):
                return {"kind": "object-int", "values": self.put(key, values.astype(np.int64))}
            raise ValueError(f"{key}: ids of mixed types {sorted(k.__name__ for k in kinds)} "
                             "cannot be saved without pickle; use one id type (or pickle).")
        return {"kind": "array", "dtype": str(dtype), "values": self.put(key, values)}

    def get(self, key):
        if key not in self.arrays:
            raise ValueError(f"arrays.npz has no array {key!r}")
        return self.arrays[key]

    def get_index(self, spec):
        kind = spec["kind"]
        if kind == "categorical":
            categories = self.get_index(spec["categories"])
            return pd.CategoricalIndex(pd.Categorical.from_codes(
                self.get(spec["codes"]), categories=categories, ordered=spec["ordered"]))
        if kind == "object-int":
            return pd.Index(self.get(spec["values"]).tolist(), dtype=object)
        if kind == "utf8":
            data, offsets = self.get(spec["bytes"]), self.get(spec["offsets"])
            if (data.dtype != np.uint8 or offsets.ndim != 1 or offsets.dtype.kind != "i"
                    or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(data)
                    or np.any(np.diff(offsets) < 0)):
                raise ValueError(f"inconsistent UTF-8 ids {spec['bytes']}")
            data = data.tobytes()
            values = [data[start:end].decode("utf-8", "surrogatepass")
                      for start, end in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
            return pd.Index(values, dtype=spec["dtype"])
        values = self.get(spec["values"])
        if kind == "str":  # format version 1
            return pd.Index(values.tolist(), dtype=spec["dtype"])
        if kind == "array":
            return pd.Index(values, dtype=spec["dtype"])
        raise ValueError(f"unknown index kind {kind!r}")


def _encode_interactions(arrays, key, data):
    return {"user_ids": arrays.put_index(f"{key}.user_ids", data.user_ids),
            "item_ids": arrays.put_index(f"{key}.item_ids", data.item_ids),
            "indptr": arrays.put(f"{key}.indptr", data.indptr),
            "items": arrays.put(f"{key}.items", data.items),
            "times": arrays.put(f"{key}.times", data.times)}


def _fitted_attributes(estimator):
    return {name: value for name, value in vars(estimator).items()
            if name.endswith("_") and not name.startswith("_")}


def _sha256(payload):
    return hashlib.sha256(payload).hexdigest()


def _write_atomically(path, members):
    """Write the zip of ``members`` to ``path`` (see :func:`replace_file`)."""
    def write(file):
        with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive:
            for member, data in members.items():
                archive.writestr(member, data)

    replace_file(path, write)


def replace_file(path, write):
    """Write ``path`` with ``write(file)`` through a temporary file in its folder: on any
    error (or a kill) the previous file at ``path`` is untouched."""
    # a symlink stays a link: the file it points to is replaced
    target = os.path.realpath(path)
    folder, name = os.path.split(target)
    temporary = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL with mode 0o666: a new name, created with the user's umask like a plain open
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    handle = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            # overwriting keeps the previous file's permissions, as writing in place did
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    if os.name == "posix":
        # the rename itself survives a power cut only once the folder is synced
        with contextlib.suppress(OSError):
            descriptor = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)


def save(estimator, path, metadata=None):
    """Write a fitted skcreate estimator to ``path`` (a zip file; ``.skc`` by convention).

    The file is written under a temporary name in the same folder, synced to disk and renamed
    over ``path``: a reader (or a crash) never sees a partial file, and a failed save leaves
    the previous file at ``path`` as it was.

    Parameters
    ----------
    estimator : fitted skcreate recommender
    path : str or path-like
    metadata : dict, optional
        Plain JSON values (str keys; numbers, strings, booleans, None, lists, dicts) about the
        model, e.g. how its training data were read; :func:`load_metadata` returns them.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        If a parameter or fitted attribute cannot be stored without pickle (a user-defined
        part, ids of mixed types), or ``metadata`` is not plain JSON: the message names it.
    """
    from sklearn.utils.validation import check_is_fitted

    if metadata is not None and not (isinstance(metadata, dict) and _is_plain(metadata)):
        raise ValueError(f"metadata must be a dict of plain JSON values with str keys, got "
                         f"{metadata!r}.")
    cls = type(estimator)
    if cls.__name__ not in _FITTED or not cls.__module__.startswith("skcreate."):
        raise TypeError(f"save supports skcreate's estimators, got {cls.__name__}.")
    check_is_fitted(estimator, "interactions_")
    required, record = _FITTED[type(estimator).__name__]
    arrays, fitted, weights, members = _Arrays(), {}, None, {}
    for name, value in _fitted_attributes(estimator).items():
        if name in getattr(estimator, "_restored_attributes", ()):
            continue
        if name not in required | record:
            raise ValueError(f"fitted attribute {name} of {type(estimator).__name__} is not "
                             "declared in skcreate.estimators.saving._FITTED, so load would refuse "
                             "the file; declare it there.")
        if name == "optimizer_state_":
            buffer = io.BytesIO()
            torch.save(value, buffer)
            members[_OPTIMIZER], fitted[name] = buffer.getvalue(), {"kind": "optimizer"}
        elif isinstance(value, torch.nn.Module):
            buffer = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in value.state_dict().items()}, buffer)
            weights, fitted[name] = buffer.getvalue(), {"kind": "module"}
        elif isinstance(value, Interactions):
            fitted[name] = {"kind": "interactions",
                            "spec": _encode_interactions(arrays, name, value)}
        elif isinstance(value, pd.Index):
            fitted[name] = {"kind": "index", "spec": arrays.put_index(name, value)}
        elif isinstance(value, np.ndarray):
            fitted[name] = {"kind": "array", "key": arrays.put(name, value)}
        elif isinstance(value, torch.device):
            fitted[name] = {"kind": "device", "value": str(value)}
        elif _is_plain(value):
            fitted[name] = {"kind": "value", "value": _plain(value)}
        else:
            raise ValueError(f"fitted attribute {name} ({type(value).__name__}) cannot be "
                             "saved without pickle.")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays.arrays)
    members[_ARRAYS] = buffer.getvalue()
    if weights is not None:
        members[_WEIGHTS] = weights

    manifest = {
        "format": "skcreate-model", "format_version": FORMAT_VERSION,
        "versions": {"skcreate": __version__, "torch": torch.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "estimator": type(estimator).__name__, "params": _encode_params(estimator),
        "fitted": fitted, "checksums": {name: _sha256(data) for name, data in members.items()},
    }
    if metadata is not None:
        manifest["metadata"] = _plain(metadata)
    manifest = json.dumps(manifest, indent=1).encode()
    _write_atomically(path, {_MANIFEST: manifest, _MANIFEST_SUM: _sha256(manifest).encode(),
                             **members})
