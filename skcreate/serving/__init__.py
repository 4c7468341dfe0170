"""Serving exported models on onnxruntime, with numpy and pandas only.

An estimator's :meth:`~skcreate.estimators.base.BaseRecommender.export` writes an ONNX graph
(histories in, top-k items out) and a JSON sidecar (id maps, columns, parameters, checksum);
:func:`load` reads them into an :class:`ExportedRecommender` with the estimators'
``recommend(histories, k)``. Nothing here imports torch, scikit-learn or implicit.

Examples
--------
>>> import os, tempfile
>>> from skcreate.data.datasets import make_interactions
>>> from skcreate.estimators.baselines import PureSVDRecommender
>>> df = make_interactions(n_users=80, n_items=40, random_state=0)
>>> path = os.path.join(tempfile.mkdtemp(), "puresvd.onnx")
>>> PureSVDRecommender(n_factors=8, random_state=0).fit(df).export(path)

In the serving process:

>>> from skcreate.serving import load
>>> load(path).recommend(df[df.user_id == 0], k=3)["rank"].tolist()
[1, 2, 3]
"""

from .format import ExportError
from .recommender import ExportedRecommender, load

__all__ = ["ExportError", "ExportedRecommender", "load"]
