"""Golden outputs: every estimator's recommendations and loss curves at fixed seeds.

Recorded before a refactoring, checked after it (tests/test_golden.py): a redesign must not
change any result. Re-record only for a change meant to alter results, and say so in its
commit::

    python tests/golden.py              # rewrites tests/golden.json
    python tests/golden.py CREATE ...   # re-records the cases named, keeps the others

Each case is a constructor call in the spelling of the version that recorded it; the test maps
it to today's spelling (:func:`skcreate.apps.migration.upgrade_params`), so the record itself
never changes.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np

PATH = Path(__file__).with_name("golden.json")

SEQUENCE = dict(n_factors=16, n_blocks=1, max_len=8, batch_size=32, epochs=2, random_state=0)
CREATE = dict(SEQUENCE, warmup_epochs=1, graph_batch_size=256)
GRAPH = dict(n_factors=16, batch_size=256, epochs=2, random_state=0)

#: name -> (estimator class name, parameters)
CASES = {
    "Random": ("RandomRecommender", dict(random_state=0)),
    "PopRandom": ("PopRandomRecommender", dict(random_state=0)),
    "Popular": ("PopularRecommender", {}),
    "PureSVD": ("PureSVDRecommender", dict(n_factors=8, random_state=0)),
    "ALS": ("ALSRecommender", dict(n_factors=8, iterations=3, random_state=0, num_threads=1)),
    "BPR": ("BPRRecommender", dict(n_factors=8, iterations=3, random_state=0, num_threads=1)),
    "LightGCN": ("LightGCNRecommender", dict(GRAPH, n_layers=2)),
    "LightGCN-normalised-dropout": ("LightGCNRecommender",
                                    dict(GRAPH, normalize_layers=True, edge_dropout=0.2)),
    "UltraGCN": ("UltraGCNRecommender", dict(GRAPH, n_negatives=4)),
    "SASRec": ("SASRecRecommender", SEQUENCE),
    "SASRec-sce-dropout": ("SASRecRecommender",
                           dict(SEQUENCE, loss="sce", sce_buckets=4, sce_bucket_size_y=8,
                                dropout=0.2)),
    "SASRec-early-stopping": ("SASRecRecommender",
                              dict(SEQUENCE, epochs=3, early_stopping=True, patience=1)),
    "CREATE": ("CREATERecommender", CREATE),
    "CREATE-bert4rec": ("CREATERecommender", dict(CREATE, sequence_encoder="bert4rec")),
    "CREATE-ultragcn": ("CREATERecommender", dict(CREATE, graph_encoder="ultragcn",
                                                  n_negatives=4)),
    "CREATE-lightgcn-options": ("CREATERecommender",
                                dict(CREATE, n_layers=2, normalize_layers=True,
                                     edge_dropout=0.1, graph_last_n=5)),
    "CREATE-contrastive-all": ("CREATERecommender",
                               dict(CREATE, alignment="contrastive", temperature=0.5,
                                    alignment_positions="all", alignment_weight=0.2)),
    "CREATE-bt-sr": ("CREATERecommender",
                     dict(CREATE, alignment="bt-sr", projector_dim=8, alignment_weight=0.25,
                          alignment_batch_size=64)),
    "CREATE-none": ("CREATERecommender", dict(CREATE, alignment="none")),
    "CREATE-layer0-stop-graph": ("CREATERecommender",
                                 dict(CREATE, alignment_graph_view="layer0",
                                      alignment_stop_gradient="graph", barlow_lambda=0.01)),
    "CREATE-sce": ("CREATERecommender",
                   dict(CREATE, loss="sce", sce_buckets=4, sce_bucket_size_y=8)),
}


def data():
    from skcreate.data.datasets import make_interactions

    X = make_interactions(n_users=120, n_items=50, random_state=0)
    # a few users the models never saw, served from their histories
    histories = make_interactions(n_users=10, n_items=50, random_state=1)
    return X, histories.assign(user_id=histories.user_id + 10_000)


def outputs(model, X, histories):
    """What a fit produced and serves: curves and top-10 lists for known and new users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
        # 20 known users keep the record small; the new ones go through the histories path
        known = model.recommend(k=10)
        known = known[known.user_id.isin(np.unique(X.user_id)[:20])]
        new = model.recommend(histories, k=10)
    out = {}
    for name in ("loss_curve_", "validation_scores_", "best_epoch_"):
        value = getattr(model, name, None)
        if value is not None:
            out[name] = np.asarray(value, dtype=float).tolist()
    for name, recs in (("known", known), ("new", new)):
        out[name] = {"user_id": recs.user_id.tolist(), "item_id": recs.item_id.tolist(),
                     "score": recs.score.astype(float).tolist()}
    return out


def construct(cls, params):
    """The case's estimator: the record keeps the spelling it was made with;
    :mod:`skcreate.apps.migration` says today's."""
    import skcreate
    from skcreate.apps.migration import upgrade_params

    cls = getattr(skcreate, cls)
    return cls(**upgrade_params(cls, params))


def record(names=None, path=PATH):
    """Record the outputs of the cases ``names`` (all by default) into ``path``."""
    unknown = set(names or ()) - set(CASES)
    if unknown:
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; choose from {list(CASES)}")
    golden = json.loads(path.read_text()) if names and path.exists() else {}
    X, histories = data()
    for name in names or CASES:
        cls, params = CASES[name]
        golden[name] = {"estimator": cls, "params": params,
                        "outputs": outputs(construct(cls, params), X, histories)}
    path.write_text(json.dumps(golden, sort_keys=True) + "\n")


if __name__ == "__main__":
    record(sys.argv[1:])
