"""Every constructor parameter changes what a fit produces, or is declared run-only.

A parameter acts when changing it (to the value in ``CHANGES``) changes the loss curves, the
validation scores or the recommendations of a small fit. Run-only parameters (where and how a
fit runs, not what it learns) are listed with the reason; ``CONDITIONS`` lists parameters
that act only under another parameter's value: the flat options of parts that are not the
default ones, which the redesign (issue 30) moves onto the parts themselves. Each of its
entries is a known wart: the list only shrinks.
"""

import warnings

import pandas as pd
import pytest
from sklearn.base import clone

from skcreate import (ALSRecommender, BPRRecommender, CREATERecommender, GraphRecommender,
                      LightGCNRecommender, PopRandomRecommender, PopularRecommender,
                      PureSVDRecommender, RandomRecommender, SASRecRecommender,
                      UltraGCNRecommender)
from skcreate.datasets import make_interactions
from skcreate.nn import LightGCNEncoder, UltraGCNEncoder

#: parameter -> why it does not change what is learnt
RUN_ONLY = {
    "device": "where the fit runs",
    "distributed": "data-parallel fits train like one process (tests/test_distributed.py)",
    "num_threads": "implicit's threads (its results do not depend on them)",
    "propagation": "LightGCN's propagation strategy: the same embeddings, computed otherwise",
    "verbose": "progress output", "callbacks": "hooks", "on_interrupt": "Ctrl-C handling",
    "checkpoint_path": "resumable fits end as uninterrupted ones (tests/test_checkpoint.py)",
    "checkpoint_every": "as checkpoint_path",
    "user_col": "names a column of the frames", "item_col": "as user_col",
    "time_col": "as user_col",
}

#: (estimator, parameter) -> why it does not change what that estimator learns
RUN_ONLY_FOR = {
    ("PureSVD", "random_state"): "ARPACK's start vector: the same subspace, the same scores",
    **{(model, "precision"): "bf16 autocast reaches no operation of LightGCN on CPU (sparse "
       "products and lookups)" for model in ("LightGCN", "Graph")},
}

SMALL = dict(random_state=0)
SEQUENCE = dict(n_factors=8, max_len=6, epochs=1, batch_size=32, **SMALL)
GRAPH = dict(epochs=1, batch_size=128, **SMALL)
ESTIMATORS = {
    "Popular": PopularRecommender(),
    "Random": RandomRecommender(**SMALL),
    "PopRandom": PopRandomRecommender(**SMALL),
    "PureSVD": PureSVDRecommender(n_factors=8, **SMALL),
    "ALS": ALSRecommender(n_factors=8, iterations=2, num_threads=1, **SMALL),
    "BPR": BPRRecommender(n_factors=8, iterations=2, num_threads=1, **SMALL),
    "LightGCN": LightGCNRecommender(n_factors=8, n_layers=1, **GRAPH),
    "UltraGCN": UltraGCNRecommender(n_factors=8, n_negatives=2, **GRAPH),
    "Graph": GraphRecommender(LightGCNEncoder(n_factors=8, n_layers=1), **GRAPH),
    "SASRec": SASRecRecommender(**SEQUENCE),
    "CREATE": CREATERecommender(warmup_epochs=1, graph_batch_size=128, **SEQUENCE),
}

#: parameter -> the value it is changed to
CHANGES = {
    "filter_seen": False, "random_state": 1, "n_factors": 4, "iterations": 3,
    "regularization": 0.5, "alpha": 5.0, "learning_rate": 0.05, "epochs": 2,
    "batch_size": 16, "weight_decay": 0.1, "early_stopping": True, "retrain_on_all": True,
    "patience": 1, "validation_quantile": 0.7, "precision": "bf16", "n_layers": 2,
    "normalize_layers": True, "edge_dropout": 0.3, "graph_last_n": 2, "graph_last_frac": 0.2,
    "constraint_weight": 0.2, "item_weight": 0.2, "n_neighbours": 2, "n_negatives": 3,
    "negative_weight": 2.0, "graph_encoder": UltraGCNEncoder(n_factors=8, n_negatives=2),
    "n_blocks": 1, "n_heads": 2, "max_len": 3, "dropout": 0.1, "norm_first": False,
    "loss": "sce", "sce_buckets": 2, "sce_bucket_size_x": 4, "sce_bucket_size_y": 4,
    "sce_candidates": 10, "sequence_encoder": "bert4rec", "mask_prob": 0.6,
    "warmup_epochs": 0, "graph_batch_size": 32, "graph_weight": 0.1, "alignment": "contrastive",
    "alignment_weight": 0.5, "barlow_lambda": 0.5, "temperature": 0.05, "projector_dim": 4,
    "alignment_positions": "all", "alignment_graph_view": "layer0",
    "alignment_stop_gradient": "graph", "alignment_batch_size": 64,
}

#: (estimator, parameter) -> the parameters under which it acts (besides their defaults)
CONDITIONS = {
    **{("CREATE", name): {"graph_encoder": "ultragcn"} for name in (
        "constraint_weight", "item_weight", "n_neighbours", "negative_weight")},
    ("CREATE", "n_negatives"): {"graph_encoder": "ultragcn"},
    ("CREATE", "temperature"): {"alignment": "contrastive"},
    ("CREATE", "projector_dim"): {"alignment": "bt-sr"},
    ("CREATE", "mask_prob"): {"sequence_encoder": "bert4rec"},
    **{(model, name): {"early_stopping": True, "epochs": 3} for model in (
        "LightGCN", "UltraGCN", "Graph", "SASRec", "CREATE")
       for name in ("retrain_on_all", "patience", "validation_quantile")},
    **{(model, name): {"loss": "sce"} for model in ("SASRec", "CREATE")
       for name in ("sce_buckets", "sce_bucket_size_x", "sce_bucket_size_y",
                    "sce_candidates")},
}
# patience acts when a score falls: with 3 epochs and patience 1 the fit may stop early
CONDITIONS.update({(model, "patience"): {"early_stopping": True, "epochs": 6,
                                         "learning_rate": 0.05}
                   for model in ("LightGCN", "UltraGCN", "Graph", "SASRec", "CREATE")})

X = make_interactions(n_users=120, n_items=40, random_state=0)


def outcome(estimator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = estimator.fit(X)
        recs = model.recommend(k=5)
    curves = {name: list(getattr(model, name)) for name in ("loss_curve_", "validation_scores_")
              if getattr(model, name, None) is not None}
    return curves, recs


def same(a, b):
    if a[0] != b[0]:
        return False
    try:
        pd.testing.assert_frame_equal(a[1], b[1])
    except AssertionError:
        return False
    return True


CASES = [(model, name) for model, est in ESTIMATORS.items()
         for name in sorted(est.get_params(deep=False))
         if name not in RUN_ONLY and (model, name) not in RUN_ONLY_FOR]


def test_every_parameter_is_covered():
    missing = sorted({name for _, name in CASES} - set(CHANGES))
    assert not missing, f"give these parameters a value in CHANGES: {missing}"


@pytest.mark.parametrize("model, name", CASES, ids=[f"{m}-{n}" for m, n in CASES])
def test_parameter_changes_the_fit(model, name):
    condition = CONDITIONS.get((model, name), {})
    reference = _clone(ESTIMATORS[model], condition)
    assert repr(reference.get_params()[name]) != repr(CHANGES[name]), "not a change"
    changed = _clone(ESTIMATORS[model], {**condition, name: CHANGES[name]})
    assert not same(outcome(reference), outcome(changed)), \
        f"{model}: {name}={CHANGES[name]!r} changed nothing" + \
        (f" (under {condition})" if condition else "")


def _clone(estimator, params):
    return clone(estimator).set_params(**params)
