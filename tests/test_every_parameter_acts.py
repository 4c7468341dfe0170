"""Every constructor parameter changes what a fit produces, or is declared run-only.

A parameter acts when changing it (to the value in ``CHANGES``) changes the loss curves, the
validation scores or the recommendations of a small fit. The options of an estimator's parts
(``graph_encoder__n_layers``) are parameters too, those of each built-in part in ``PARTS``
(a part that is not the default is tested under its name). Run-only parameters (where and
how a fit runs, not what it learns) are listed with the reason; ``CONDITIONS`` lists
parameters that act only under another parameter's value.
"""

import warnings

import pandas as pd
import pytest
from sklearn.base import clone

from skcreate import (ALSRecommender, BPRRecommender, CREATERecommender, GraphRecommender,
                      LightGCNRecommender, PopRandomRecommender, PopularRecommender,
                      PureSVDRecommender, RandomRecommender, SASRecRecommender,
                      UltraGCNRecommender)
from skcreate.data.datasets import make_interactions
from skcreate.nn import LightGCNEncoder, SASRecEncoder

#: parameter (or a part's option) -> why it does not change what is learnt
RUN_ONLY = {
    "trainer": "its options are cases of their own (trainer__<name>)",
    "device": "where the fit runs",
    "distributed": "data-parallel fits train like one process (tests/test_distributed.py)",
    "num_threads": "implicit's threads (its results do not depend on them)",
    "propagation": "LightGCN's propagation strategy: the same embeddings computed otherwise "
                   "(historical: the same rows after each refresh; test_propagation.py)",
    "graph_encoder__propagation": "as propagation",
    "verbose": "progress output", "callbacks": "hooks", "on_interrupt": "Ctrl-C handling",
    "checkpoint_path": "resumable fits end as uninterrupted ones (tests/test_checkpoint.py)",
    "checkpoint_every": "as checkpoint_path",
    "user_col": "names a column of the frames", "item_col": "as user_col",
    "time_col": "as user_col",
}

#: (estimator, parameter) -> why it does not change what that estimator learns
RUN_ONLY_FOR = {
    ("PureSVD", "random_state"): "ARPACK's start vector: the same subspace, the same scores",
    **{(model, "trainer__precision"): "bf16 autocast reaches no operation of LightGCN on CPU "
       "(sparse products and lookups)" for model in ("LightGCN", "Graph")},
    **{key: "lazy updates differ from Adam's on rows a step leaves unread; on this 120 x 40 "
       "graph a LightGCN step's neighbourhood is every row (tests/test_row_sparse.py checks it "
       "on a sparser graph)" for key in (("LightGCN", "row_sparse"),
                                         ("Graph", "graph_encoder__row_sparse"))},
    ("CREATE", "graph_encoder__n_factors"): "the width is the shared table's, n_factors (an "
                                            "encoder's own is refused)",
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
    "CREATE": CREATERecommender(n_factors=8, sequence_encoder=SASRecEncoder(max_len=6),
                                epochs=1, batch_size=32, warmup_epochs=1, graph_batch_size=128,
                                **SMALL),
}

#: parameter -> the value it is changed to
CHANGES = {
    "filter_seen": False, "random_state": 1, "n_factors": 4, "iterations": 3,
    "regularization": 0.5, "alpha": 5.0, "learning_rate": 0.05, "epochs": 2,
    "batch_size": 16, "weight_decay": 0.1, "early_stopping": True, "retrain_on_all": True,
    "patience": 1, "validation_quantile": 0.7, "precision": "bf16", "n_layers": 2,
    "normalize_layers": True, "edge_dropout": 0.3, "graph_last_n": 2, "graph_last_frac": 0.2,
    "constraint_weight": 0.2, "item_weight": 0.2, "n_neighbours": 2, "n_negatives": 3,
    "negative_weight": 2.0, "graph_encoder": "ultragcn",
    "n_blocks": 1, "n_heads": 2, "max_len": 3, "dropout": 0.1, "norm_first": False,
    "loss": "sce", "n_buckets": 2, "bucket_size_x": 4, "bucket_size_y": 4,
    "n_candidates": 10, "sequence_encoder": "bert4rec", "mask_prob": 0.6,
    "warmup_epochs": 0, "graph_batch_size": 32, "graph_weight": 0.1, "alignment": "contrastive",
    "alignment_weight": 0.5, "barlow_lambda": 0.5, "temperature": 0.05, "projector_dim": 4,
    "positions": "all", "graph_view": "layer0", "stop_gradient": "graph",
    "alignment_batch_size": 64, "row_sparse": True, "fanout": 1, "walks": 1,
    "joint_graph_step": "light", "warmup_graph_step": "full",
}

#: (estimator, part parameter) -> the names of the other built-in parts whose options are
#: tested under that name (the default part's are tested as they are)
PARTS = {("CREATE", "sequence_encoder"): ["bert4rec"],
         ("CREATE", "graph_encoder"): ["ultragcn"],
         ("CREATE", "alignment"): ["contrastive", "bt-sr"],
         **{(model, "loss"): ["sce"] for model in ("SASRec", "CREATE")}}

#: (estimator, parameter) -> the parameters under which it acts (besides their defaults)
CONDITIONS = {
    **{(model, f"trainer__{name}"): {"trainer__early_stopping": True, "epochs": 3}
       for model in ("LightGCN", "UltraGCN", "Graph", "SASRec", "CREATE")
       for name in ("retrain_on_all", "patience", "validation_quantile")},
}
# walks carry layers 2..K of a historical step
CONDITIONS.update({("LightGCN", "walks"): {"n_layers": 2, "propagation": "historical"},
                   **{(model, "graph_encoder__walks"): {"graph_encoder__n_layers": 2,
                                                         "graph_encoder__propagation":
                                                         "historical"}
                      for model in ("Graph", "CREATE")}})
# a warm-up step's gradients stop at its own rows only where its steps are historical ("auto"
# takes "light" there)
CONDITIONS[("CREATE", "warmup_graph_step")] = {"graph_encoder__propagation": "historical"}
# patience acts when a score falls: with 3 epochs and patience 1 the fit may stop early
CONDITIONS.update({(model, "trainer__patience"): {"trainer__early_stopping": True, "epochs": 6,
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


def _clone(estimator, params):
    return clone(estimator).set_params(**params)


def _cases():
    cases = []
    for model, est in ESTIMATORS.items():
        conditions = [{}] + [{part: name} for (m, part), names in PARTS.items() if m == model
                             for name in names]
        for condition in conditions:
            params = _clone(est, condition).get_params()
            part = next(iter(condition), None)
            for name in sorted(params):
                if condition and not name.startswith(f"{part}__"):
                    continue
                if name in RUN_ONLY or name.rpartition("__")[2] in RUN_ONLY or \
                        (model, name) in RUN_ONLY_FOR:
                    continue
                cases.append((model, name, {**CONDITIONS.get((model, name), {}), **condition}))
    return cases


CASES = _cases()


def test_every_parameter_is_covered():
    missing = sorted({name.rpartition("__")[2] for _, name, _ in CASES} - set(CHANGES))
    assert not missing, f"give these parameters a value in CHANGES: {missing}"


@pytest.mark.parametrize("model, name, condition", CASES, ids=[
    f"{m}-{n}" + "".join(f"-{v}" for v in c.values() if isinstance(v, str)) for m, n, c in CASES])
def test_parameter_changes_the_fit(model, name, condition):
    change = CHANGES[name.rpartition("__")[2]]
    reference = _clone(ESTIMATORS[model], condition)
    assert repr(reference.get_params()[name]) != repr(change), "not a change"
    changed = _clone(ESTIMATORS[model], {**condition, name: change})
    assert not same(outcome(reference), outcome(changed)), \
        f"{model}: {name}={change!r} changed nothing" + \
        (f" (under {condition})" if condition else "")

