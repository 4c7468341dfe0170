"""Old spellings: skcreate.apps.migration's table, model files of 0.1.x, and the docs' table."""

import json
import re
from pathlib import Path

import pandas as pd

import skcreate
from skcreate import CREATERecommender
from skcreate.data.datasets import make_interactions
from skcreate.apps.migration import RENAMED, respell, upgrade_params
from skcreate.nn import Alignment, InfoNCE, LightGCNEncoder

from test_persistence import manifest_of, rewrite

#: the flat parameters of CREATERecommender 0.1.x beside its part parameters, at their defaults
OLD_DEFAULTS = {"n_blocks": 2, "n_heads": 1, "max_len": 50, "dropout": 0.3, "norm_first": True,
                "mask_prob": 0.2, "n_layers": 1, "normalize_layers": False, "edge_dropout": 0.0,
                "constraint_weight": 1.0, "item_weight": 1.0, "n_neighbours": 10,
                "n_negatives": 10, "negative_weight": 10.0, "barlow_lambda": 5e-3,
                "temperature": 0.2, "projector_dim": 64, "alignment_positions": "last",
                "alignment_graph_view": "propagated", "alignment_stop_gradient": None,
                "sce_buckets": None, "sce_bucket_size_x": None, "sce_bucket_size_y": 256,
                "sce_candidates": 65536, "device": "cpu", "early_stopping": False, "patience": 5,
                "validation_quantile": 0.9, "retrain_on_all": False, "checkpoint_path": None,
                "checkpoint_every": 1, "callbacks": None, "on_interrupt": "raise",
                "distributed": "auto", "precision": "fp32", "verbose": False}


def test_options_of_the_parts_in_use_move_onto_them_the_rest_is_dropped():
    params = upgrade_params(CREATERecommender, {**OLD_DEFAULTS, "alignment": "contrastive",
                                                "temperature": 0.5, "n_layers": 2,
                                                "barlow_lambda": 0.1, "epochs": 3})
    assert params["epochs"] == 3
    assert repr(params["alignment"]) == repr(InfoNCE(temperature=0.5))
    assert repr(params["graph_encoder"]) == repr(LightGCNEncoder(n_layers=2))
    # options left at their defaults keep the names
    params = upgrade_params(CREATERecommender, OLD_DEFAULTS)
    assert params["alignment"] == "barlow" and params["graph_encoder"] == "lightgcn"
    assert params == CREATERecommender().get_params(deep=False)
    # no part, or a part without that option: the option had no effect
    assert upgrade_params(CREATERecommender, {"alignment": "none", "temperature": 0.5}
                          )["alignment"] == "none"
    assert repr(upgrade_params(CREATERecommender, {"sequence_encoder": "bert4rec", "max_len": 20,
                                                   "mask_prob": 0.2})["sequence_encoder"]) \
        == "BERT4RecEncoder(max_len=20)"
    assert repr(upgrade_params(skcreate.LightGCNRecommender, {"early_stopping": True,
                                                              "verbose": False})["trainer"]) \
        == "Trainer(early_stopping=True)"
    assert upgrade_params(skcreate.SASRecRecommender, {"loss": "ce", "sce_buckets": 4}) \
        == skcreate.SASRecRecommender().get_params(deep=False)
    assert repr(upgrade_params(skcreate.SASRecRecommender, {"loss": "sce", "sce_buckets": 4})[
        "loss"]) == "ScalableCrossEntropy(n_buckets=4)"

    class Mine(Alignment):
        def forward(self, a, b):
            return (a * b).sum()

    mine = Mine()
    assert upgrade_params(CREATERecommender, {"alignment": mine, "barlow_lambda": 0.1}
                          )["alignment"] is mine


def test_respell_renames_without_resolving():
    assert respell(CREATERecommender, {"alignment_positions": "all", "n_layers": 2}) == \
        {"alignment__positions": "all", "graph_encoder__n_layers": 2}
    # a name the estimator still has is not renamed
    assert respell(skcreate.LightGCNRecommender, {"n_layers": 2}) == {"n_layers": 2}


def test_a_model_file_of_0_1_loads_and_serves_the_same(tmp_path):
    X = make_interactions(n_users=80, n_items=30, random_state=0)
    model = CREATERecommender(n_factors=8, epochs=1, warmup_epochs=1, random_state=0,
                              alignment=InfoNCE(temperature=0.5, positions="all"),
                              graph_encoder=LightGCNEncoder(n_layers=2)).fit(X)
    model.save(tmp_path / "m.skc")
    manifest = manifest_of(tmp_path / "m.skc")
    # the manifest 0.1.x wrote: flat options, parts by name
    manifest["params"] = {**manifest["params"], **OLD_DEFAULTS, "alignment": "contrastive",
                          "graph_encoder": "lightgcn", "temperature": 0.5, "n_layers": 2,
                          "alignment_positions": "all"}
    manifest["versions"]["skcreate"] = "0.1.0"
    old = rewrite(tmp_path / "m.skc", **{"manifest.json": json.dumps(manifest).encode()})
    loaded = skcreate.load(old)
    assert repr(loaded.alignment) == repr(model.alignment)
    assert repr(loaded.graph_encoder) == repr(model.graph_encoder)
    pd.testing.assert_frame_equal(loaded.recommend(X, k=5), model.recommend(X, k=5))


def test_the_docs_table_lists_every_renamed_parameter():
    text = (Path(__file__).parents[1] / "docs" / "migration.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)` \| `(\w+)` \| `(\w+)` \|", text, re.M))
    expected = {(cls, old, new) for table in RENAMED.values()
                for cls, renamed in table.items() for old, new in renamed.items()}
    assert rows == expected
