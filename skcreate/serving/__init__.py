"""Serving exported models on onnxruntime, with numpy and pandas only.

An estimator's :meth:`~skcreate.estimators.base.BaseRecommender.export` writes an ONNX graph
(histories in, top-k items out) and a JSON sidecar (id maps, columns, parameters, checksum);
:func:`load` reads them into an :class:`ExportedRecommender` with the estimators'
``recommend(histories, k)``. Nothing here imports torch, scikit-learn or implicit.

Examples
--------
>>> from skcreate.serving import load  # doctest: +SKIP
>>> model = load("beauty.onnx")  # doctest: +SKIP
>>> model.recommend(histories, k=10)  # doctest: +SKIP
"""

from .format import ExportError
from .recommender import ExportedRecommender, load

__all__ = ["ExportError", "ExportedRecommender", "load"]
