"""Exporting fitted recommenders to ONNX for :mod:`skcreate.serving` (format described there).

The estimator's serving network (:mod:`skcreate.nn.scoring`: its scorer, the popularity
fallback and the seen-item filter) is exported by torch's ONNX exporter with the batch and the
history length dynamic; a ``TopK`` node with ``k`` as an input is then appended, so that one
graph serves any ``k``.
"""

import contextlib
import io
import json
import logging
import os
import warnings

import torch
from sklearn.utils.validation import check_is_fitted

from .._version import __version__
from ..nn.scoring import ServingNetwork
from ..serving.format import FORMAT, FORMAT_VERSION, encode_ids, file_sha256, sidecar_path
from .saving import _encode_params, replace_file

__all__ = ["export"]

_FORMATS = ("onnx",)


def export(estimator, path, format="onnx"):
    """Write ``estimator`` as an ONNX graph at ``path`` and its sidecar at ``<path>.json``.

    See :meth:`skcreate.estimators.base.BaseRecommender.export`.
    """
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {list(_FORMATS)}, got {format!r}.")
    check_is_fitted(estimator, "interactions_")
    if torch.__version__ < "2.6":
        raise ImportError(f"export needs torch >= 2.6 (its ONNX exporter), got "
                          f"{torch.__version__}.")
    try:
        import onnx
    except ImportError:
        raise ImportError("export needs onnx, onnxscript and onnxruntime: pip install "
                          "'skcreate[serving]'.") from None
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot export to {os.fspath(path)!r}: the folder {folder!r} "
                                "does not exist.")
    columns = {"user": estimator.user_col, "item": estimator.item_col,
               "time": estimator.time_col}
    for role, name in columns.items():
        if isinstance(name, bool) or not isinstance(name, (str, int)):
            raise ValueError(f"{role}_col={name!r}: an export stores column names as JSON, so "
                             "they must be str or int.")
    scorer, user_ids = estimator._serving_scorer()
    sidecar = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "skcreate_version": __version__,
        "estimator": type(estimator).__name__, "params": _params(estimator),
        "columns": columns, "filter_seen": bool(estimator.filter_seen_),
        "n_items": int(estimator.n_items_), "context": getattr(scorer, "context", None),
        "item_ids": encode_ids(estimator.item_ids_, "item ids"),
        "user_ids": None if user_ids is None else encode_ids(user_ids, "user ids"),
    }
    network = ServingNetwork(scorer, estimator.item_popularity_, estimator.filter_seen_).eval()
    model = _with_top_k(onnx, _to_onnx(network, sidecar["context"]))
    sidecar["inputs"] = [node.name for node in model.graph.input]
    path = os.fspath(path)
    replace_file(path, lambda file: file.write(model.SerializeToString()))
    sidecar["onnx_sha256"] = file_sha256(path)
    replace_file(sidecar_path(path), lambda file: file.write(json.dumps(sidecar).encode()))


def _params(estimator):
    try:
        return _encode_params(estimator)
    except ValueError:
        # an export serves without the parameters: describe what cannot be stored
        return {name: repr(value) for name, value in estimator.get_params(deep=False).items()}


def _to_onnx(network, context):
    """The network's ONNX model: (history, users) -> scores, batch and length dynamic."""
    # an example longer than the context, so that the trace keeps the slice of its last items
    length = (context or 3) + 2
    history = torch.ones(2, length, dtype=torch.int64)
    users = torch.zeros(2, dtype=torch.int64)
    batch, width = torch.export.Dim("batch", min=1), torch.export.Dim("length", min=1)
    # the exporter reports its progress and unrelated missing packages (torchvision)
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                network, (history, users), dynamo=True, input_names=["history", "users"],
                output_names=["all_scores"], dynamic_shapes=({0: batch, 1: width}, {0: batch}),
                verbose=False, optimize=True)
    finally:
        logger.setLevel(level)
    return program.model_proto


def _with_top_k(onnx, model):
    """``model`` with input ``k`` and outputs ``items``, ``scores``: the top k of its scores."""
    from onnx import TensorProto, helper

    graph = model.graph
    (scores,) = graph.output
    # a model that keeps no fitted user rows takes no users
    used = {name for node in graph.node for name in node.input}
    for unused in [node for node in graph.input if node.name not in used]:
        graph.input.remove(unused)
    k = helper.make_tensor_value_info("k", TensorProto.INT64, [1])
    graph.input.append(k)
    graph.node.append(helper.make_node("TopK", [scores.name, "k"], ["scores", "items"],
                                       axis=-1, largest=1, sorted=1, name="top_k"))
    del graph.output[:]
    graph.output.extend([
        helper.make_tensor_value_info("items", TensorProto.INT64, ["batch", "k"]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", "k"])])
    onnx.checker.check_model(model)
    return model
