"""skcreate: scikit-learn-style sequential recommendation, centred on CREATE.

The names below are imported on first use (PEP 562), so ``import skcreate`` and the command
line's help stay fast: torch, implicit and scikit-learn load only with the estimators that
need them.
"""

import importlib

from . import _version

__version__ = _version.__version__

# public name -> the submodule that defines it
_EXPORTS = {
    "PopRandomRecommender": "estimators.baselines", "PopularRecommender": "estimators.baselines",
    "PureSVDRecommender": "estimators.baselines", "RandomRecommender": "estimators.baselines",
    "CREATERecommender": "estimators.create",
    "GraphRecommender": "estimators.graph", "LightGCNRecommender": "estimators.graph",
    "UltraGCNRecommender": "estimators.graph",
    "ALSRecommender": "estimators.matrix_factorization",
    "BPRRecommender": "estimators.matrix_factorization",
    "GlobalTemporalSplit": "data.model_selection", "LeaveLastOutSplit": "data.model_selection",
    "global_temporal_split": "data.model_selection",
    "load": "apps.persistence",
    "RecommenderPipeline": "estimators.pipeline",
    "SASRecRecommender": "estimators.sequential",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skcreate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
