"""Saving fitted recommenders without pickle: a versioned manifest, arrays and weights.

A model file is a zip archive:

- ``manifest.json``: format version, skcreate / torch / numpy versions, estimator class,
  ``get_params()``, the fitted scalar attributes and curves, how each fitted array and id index
  is stored, the SHA-256 of every other member and the caller's ``metadata`` (optional);
- ``arrays.npz``: fitted arrays and id mappings, written and read with ``allow_pickle=False``;
- ``weights.pt`` (neural estimators): the torch ``state_dict``, read with
  ``torch.load(weights_only=True)``.

Loading never executes code from the file: the estimator class must be one of skcreate's, a
pickled payload is refused, and a member whose checksum does not match is an error. The torch
network is rebuilt from the saved parameters and data, then given the saved weights.
"""

import hashlib
import io
import json
import numbers
import pickle
import zipfile

import numpy as np
import pandas as pd
import torch

from .interactions import Interactions

__all__ = ["FORMAT_VERSION", "ModelFileError", "save", "load", "load_metadata"]

FORMAT_VERSION = 1
_MEMBERS = ("manifest.json", "arrays.npz", "weights.pt")


class ModelFileError(ValueError):
    """A model file that cannot be loaded: unknown format, missing part, bad checksum."""


def _estimator_classes():
    from . import (ALSRecommender, BPRRecommender, CREATERecommender, LightGCNRecommender,
                   PopRandomRecommender, PopularRecommender, PureSVDRecommender,
                   RandomRecommender, SASRecRecommender, UltraGCNRecommender)
    return {cls.__name__: cls for cls in (
        ALSRecommender, BPRRecommender, CREATERecommender, LightGCNRecommender,
        PopRandomRecommender, PopularRecommender, PureSVDRecommender, RandomRecommender,
        SASRecRecommender, UltraGCNRecommender)}


def _component_classes():
    from .nn.registry import ALIGNMENTS, GRAPH_ENCODERS
    return {cls.__name__: cls for registry in (ALIGNMENTS, GRAPH_ENCODERS)
            for cls in registry.entries.values() if cls is not None}


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


def _encode_params(estimator):
    params, components = {}, _component_classes()
    for name, value in estimator.get_params(deep=False).items():
        if name == "callbacks" and value is not None:
            raise ValueError("callbacks are training hooks, not part of a fitted model: set "
                             "callbacks=None before save (or use pickle).")
        if _is_plain(value):
            params[name] = _plain(value)
        elif components.get(type(value).__name__) is type(value):
            params[name] = {"__component__": type(value).__name__,
                            "params": _plain(value.get_params())}
        else:
            raise ValueError(f"Parameter {name}={value!r} is an object skcreate cannot "
                             "describe without pickle (a user-defined part); save the model "
                             "with pickle instead.")
    return params


def _decode_params(params):
    components = _component_classes()
    out = {}
    for name, value in params.items():
        if isinstance(value, dict) and "__component__" in value:
            cls = components.get(value["__component__"])
            if cls is None:
                raise ModelFileError(f"unknown component {value['__component__']!r} for "
                                     f"parameter {name}.")
            value = cls(**value["params"])
        out[name] = value
    return out


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
                return {"kind": "str", "dtype": str(dtype),
                        "values": self.put(key, values.astype(str))}
            if all(issubclass(k, numbers.Integral) for k in kinds):
                return {"kind": "object-int", "values": self.put(key, values.astype(np.int64))}
            raise ValueError(f"{key}: ids of mixed types {sorted(k.__name__ for k in kinds)} "
                             "cannot be saved without pickle; use one id type (or pickle).")
        return {"kind": "array", "dtype": str(dtype), "values": self.put(key, values)}

    def get(self, key):
        return self.arrays[key]

    def get_index(self, spec):
        kind = spec["kind"]
        if kind == "categorical":
            categories = self.get_index(spec["categories"])
            return pd.CategoricalIndex(pd.Categorical.from_codes(
                self.get(spec["codes"]), categories=categories, ordered=spec["ordered"]))
        if kind == "object-int":
            return pd.Index(self.get(spec["values"]).tolist(), dtype=object)
        values = self.get(spec["values"])
        if kind == "str":
            return pd.Index(values.tolist(), dtype=spec["dtype"])
        return pd.Index(values, dtype=spec["dtype"])


def _encode_interactions(arrays, key, data):
    return {"user_ids": arrays.put_index(f"{key}.user_ids", data.user_ids),
            "item_ids": arrays.put_index(f"{key}.item_ids", data.item_ids),
            "indptr": arrays.put(f"{key}.indptr", data.indptr),
            "items": arrays.put(f"{key}.items", data.items),
            "times": arrays.put(f"{key}.times", data.times)}


def _decode_interactions(arrays, spec):
    return Interactions(arrays.get_index(spec["user_ids"]), arrays.get_index(spec["item_ids"]),
                        arrays.get(spec["indptr"]), arrays.get(spec["items"]),
                        arrays.get(spec["times"]))


def _fitted_attributes(estimator):
    return {name: value for name, value in vars(estimator).items()
            if name.endswith("_") and not name.startswith("_")}


def _sha256(payload):
    return hashlib.sha256(payload).hexdigest()


def save(estimator, path, metadata=None):
    """Write a fitted skcreate estimator to ``path`` (a zip file; ``.skc`` by convention).

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
    if type(estimator).__name__ not in _estimator_classes():
        raise TypeError(f"save supports skcreate's estimators, got {type(estimator).__name__}.")
    check_is_fitted(estimator, "interactions_")
    arrays, fitted, weights = _Arrays(), {}, None
    for name, value in _fitted_attributes(estimator).items():
        if isinstance(value, torch.nn.Module):
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
        elif name in getattr(estimator, "_restored_attributes", ()):
            continue
        else:
            raise ValueError(f"fitted attribute {name} ({type(value).__name__}) cannot be "
                             "saved without pickle.")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays.arrays)
    members = {"arrays.npz": buffer.getvalue()}
    if weights is not None:
        members["weights.pt"] = weights
    from . import __version__

    manifest = {
        "format": "skcreate-model", "format_version": FORMAT_VERSION,
        "versions": {"skcreate": __version__, "torch": torch.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "estimator": type(estimator).__name__, "params": _encode_params(estimator),
        "fitted": fitted, "checksums": {name: _sha256(data) for name, data in members.items()},
    }
    if metadata is not None:
        manifest["metadata"] = _plain(metadata)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        for name, data in members.items():
            archive.writestr(name, data)


def _read_members(path):
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            unknown = sorted(set(names) - set(_MEMBERS))
            if unknown:
                raise ModelFileError(f"{path}: unexpected member(s) {unknown}; a skcreate model "
                                     f"file holds only {list(_MEMBERS)}.")
            return {name: archive.read(name) for name in names}
    except zipfile.BadZipFile:
        raise ModelFileError(f"{path} is not a skcreate model file (not a zip archive); a "
                             "pickled model loads with pickle, at your own risk.") from None


def load_metadata(path):
    """The ``metadata`` given to :func:`save` for the model file at ``path``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        Empty for a file saved without metadata (or by a skcreate before it had them).

    Raises
    ------
    ModelFileError
        If ``path`` is not a skcreate model file.
    """
    # the manifest alone: the arrays and weights of a large model need not be read for this
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("manifest.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise ModelFileError(f"{path} is not a skcreate model file (no readable manifest).") \
            from None
    if not isinstance(manifest, dict) or manifest.get("format") != "skcreate-model":
        raise ModelFileError(f"{path}: not a skcreate model manifest.")
    metadata = manifest.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: the manifest's metadata is not a mapping.")
    return metadata


def load(path, device="cpu"):
    """Load a model written by :func:`save` (or ``estimator.save``); no code from the file runs.

    Parameters
    ----------
    path : str or path-like
    device : str or torch.device, default="cpu"
        Where a neural model's weights go.

    Returns
    -------
    estimator
        Fitted, serving the same recommendations as the saved one.

    Raises
    ------
    ModelFileError
        A newer format version, a missing part, a checksum mismatch, an unknown estimator or a
        pickled payload.
    """
    members = _read_members(path)
    if "manifest.json" not in members:
        raise ModelFileError(f"{path}: manifest.json is missing.")
    manifest = json.loads(members["manifest.json"])
    if manifest.get("format") != "skcreate-model":
        raise ModelFileError(f"{path}: not a skcreate model manifest.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {version!r}; this skcreate reads "
                             f"versions up to {FORMAT_VERSION}: upgrade skcreate.")
    for name, digest in manifest["checksums"].items():
        if name not in members:
            raise ModelFileError(f"{path}: part {name} is missing.")
        if _sha256(members[name]) != digest:
            raise ModelFileError(f"{path}: checksum mismatch in {name}; the file is damaged "
                                 "or was altered.")
    cls = _estimator_classes().get(manifest["estimator"])
    if cls is None:
        raise ModelFileError(f"{path}: unknown estimator {manifest['estimator']!r}.")
    try:
        with np.load(io.BytesIO(members["arrays.npz"]), allow_pickle=False) as npz:
            arrays = _Arrays({key: npz[key] for key in npz.files})
    except ValueError as exc:
        raise ModelFileError(f"{path}: arrays.npz holds a pickled object ({exc}); refused.") \
            from None
    estimator = cls(**_decode_params(manifest["params"]))
    state = None
    for name, spec in manifest["fitted"].items():
        kind = spec["kind"]
        if kind == "module":
            try:
                state = torch.load(io.BytesIO(members["weights.pt"]), map_location="cpu",
                                   weights_only=True)
            except pickle.UnpicklingError as exc:
                raise ModelFileError(f"{path}: weights.pt holds more than tensors; refused "
                                     f"({exc}).") from None
        elif kind == "interactions":
            setattr(estimator, name, _decode_interactions(arrays, spec["spec"]))
        elif kind == "index":
            setattr(estimator, name, arrays.get_index(spec["spec"]))
        elif kind == "array":
            setattr(estimator, name, arrays.get(spec["key"]))
        elif kind == "device":
            setattr(estimator, name, torch.device(device))
        elif kind == "value":
            setattr(estimator, name, spec["value"])
        else:
            raise ModelFileError(f"{path}: unknown kind {kind!r} of attribute {name}.")
    estimator._restore(state)
    return estimator
