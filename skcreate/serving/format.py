"""The export format: an ONNX graph and its JSON sidecar, read without torch.

``<name>.onnx`` maps a batch of histories to the top k items:

- inputs: ``history``, int64 (batch, length): item-table rows (item code + 1), left-padded
  with 0, most recent last; ``k``, int64 (1,), at most the catalogue size; and, for models
  that keep the rows of the users seen at fit, ``users``, int64 (batch,): a user's row among
  them or -1;
- outputs: ``items``, int64 (batch, k), item codes best first, and ``scores``, float32
  (batch, k), ``-inf`` where fewer than k items are left (seen items filtered).

``<name>.onnx.json`` (the sidecar) holds what the graph does not: the format version, the
skcreate version and estimator, its parameters, the column names, the item ids (code ``c`` is
``item_ids[c]``) and, where the graph reads ``users``, the fitted user ids; how many recent
items the scores depend on (``context``, None for the whole history); and the SHA-256 of the
ONNX file, checked at load.
"""

import hashlib
import json

import numpy as np
import pandas as pd

__all__ = ["FORMAT", "FORMAT_VERSION", "ExportError", "sidecar_path", "encode_ids",
           "decode_ids", "file_sha256", "read_sidecar"]

FORMAT, FORMAT_VERSION = "skcreate-export", 1


class ExportError(ValueError):
    """An export that is damaged, of another version, or does not match its sidecar."""


def sidecar_path(path):
    """The sidecar of the ONNX file at ``path``."""
    return f"{path}.json"


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode_ids(index, name):
    """A JSON spec from which :func:`decode_ids` rebuilds ``index`` exactly.

    Strings (any Python str: JSON escapes lone surrogates), integers, floats and booleans,
    plain or categorical, are supported; other ids raise a ``ValueError`` naming ``name``.
    """
    dtype = index.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return {"kind": "categorical", "ordered": bool(dtype.ordered),
                "codes": np.asarray(index.codes).tolist(),
                "categories": encode_ids(dtype.categories, f"{name} categories")}
    values = index.to_numpy()
    if values.dtype.kind in "iufb":
        return {"kind": "array", "dtype": str(values.dtype), "values": values.tolist()}
    if values.dtype == object or pd.api.types.is_string_dtype(dtype):
        kinds = {type(value) for value in values}
        if kinds <= {str}:
            return {"kind": "str", "dtype": str(dtype), "values": values.tolist()}
        if kinds and all(issubclass(kind, (int, np.integer)) and not issubclass(kind, bool)
                         for kind in kinds):
            return {"kind": "object-int", "values": [int(value) for value in values]}
    raise ValueError(f"{name} of dtype {dtype} ({sorted({type(v).__name__ for v in values})}) "
                     "cannot be exported: use str or integer ids, e.g. with .astype(str).")


def decode_ids(spec):
    kind = spec["kind"]
    if kind == "categorical":
        categories = decode_ids(spec["categories"])
        return pd.CategoricalIndex(pd.Categorical.from_codes(
            spec["codes"], categories=categories, ordered=spec["ordered"]))
    if kind == "array":
        return pd.Index(np.array(spec["values"], dtype=spec["dtype"]))
    if kind == "str":
        return pd.Index(spec["values"], dtype=spec["dtype"])
    if kind == "object-int":
        return pd.Index(spec["values"], dtype=object)
    raise ExportError(f"unknown id kind {kind!r}")


_REQUIRED = {"format": str, "format_version": int, "skcreate_version": str, "estimator": str,
             "params": dict, "columns": dict, "filter_seen": bool, "n_items": int,
             "context": (int, type(None)), "inputs": list, "onnx_sha256": str,
             "item_ids": dict, "user_ids": (dict, type(None))}


def read_sidecar(onnx_path):
    """The sidecar of ``onnx_path``, checked against the ONNX file.

    Raises
    ------
    FileNotFoundError
        If the ONNX file or its sidecar is missing.
    ExportError
        If the sidecar is not an export's, is of a later format version, is damaged, or
        describes another ONNX file (checksum).
    """
    path = sidecar_path(onnx_path)
    with open(onnx_path, "rb") as file:
        if file.read(4) == b"PK\x03\x04":
            raise ExportError(f"{onnx_path} is a zip archive, such as a skcreate model file, "
                              "not an ONNX export: load a model file with skcreate.load, and "
                              "write an export with the model's export().")
    try:
        with open(path, encoding="utf-8") as file:
            sidecar = json.load(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"{onnx_path} has no sidecar {path}: an export is the ONNX "
                                "file and its sidecar, written together by export.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path} is not an export's sidecar (not JSON: {exc}).") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise ExportError(f"{path} is not an export's sidecar (format is not {FORMAT!r}).")
    for key, kind in _REQUIRED.items():
        if not isinstance(sidecar.get(key), kind):
            raise ExportError(f"{path} is damaged: {key!r} is missing or of the wrong type.")
    if sidecar["format_version"] > FORMAT_VERSION:
        raise ExportError(f"{path} has export format version {sidecar['format_version']} "
                          f"(skcreate {sidecar['skcreate_version']}); this skcreate reads up to "
                          f"{FORMAT_VERSION}: upgrade skcreate.")
    if file_sha256(onnx_path) != sidecar["onnx_sha256"]:
        raise ExportError(f"{onnx_path} does not match its sidecar {path} (SHA-256 differs): "
                          "the file is damaged or belongs to another export.")
    return sidecar
