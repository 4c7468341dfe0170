"""User-defined CREATE parts: alignments and graph encoders passed as objects."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skcreate import CREATERecommender, GlobalTemporalSplit
from skcreate.nn import BarlowTwins, InfoNCE, LightGCNEncoder

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "custom_parts.py"
FAST = dict(n_factors=16, batch_size=64, warmup_epochs=1, epochs=1, random_state=0)


@pytest.fixture(scope="module")
def parts():
    """The user guide's example file, imported from outside the package."""
    spec = importlib.util.spec_from_file_location("custom_parts", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_user_parts_fit_and_train(parts, synthetic):
    alignment, encoder = parts.CosineAlignment(scale=2.0), parts.MFEncoder()
    model = CREATERecommender(alignment=alignment, graph_encoder=encoder, **FAST).fit(synthetic)
    assert set(model.loss_terms_) == {"local", "global", "align"}
    assert model.loss_terms_["align"][1] > 0
    assert isinstance(model.module_.alignment, parts.CosineAlignment)
    assert isinstance(model.module_.graph.encoder, parts.MFEncoder)
    # the estimator trains clones: the objects passed in stay unbuilt and untouched
    assert model.module_.graph.encoder is not encoder and not hasattr(encoder, "user_embedding")
    assert model.alignment is alignment and alignment.scale == 2.0
    # one table: the user's encoder writes the table the transformer serves with
    assert model.module_.graph.item_table is model.module_.sequence.item_table
    recs = model.recommend(k=5)
    assert recs.groupby("user_id").size().eq(5).all()


def test_user_alignment_gets_the_batch_views(parts, synthetic):
    seen = []

    class Recording(parts.CosineAlignment):
        def forward(self, sequence_states, graph_users):
            seen.append((sequence_states.shape, graph_users.shape))
            return super().forward(sequence_states, graph_users)

    CREATERecommender(alignment=Recording(), **FAST).fit(synthetic)
    assert seen and all(a == b and a[1] == 16 for a, b in seen)


def test_grid_search_over_user_alignment_params(parts, synthetic):
    search = GridSearchCV(
        CREATERecommender(alignment=parts.CosineAlignment(), graph_encoder=parts.MFEncoder(),
                          **FAST),
        {"alignment__scale": [0.5, 2.0], "alignment_weight": [0.1, 1.0]},
        cv=GlobalTemporalSplit(quantile=0.8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search.fit(synthetic)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.alignment.scale == search.best_params_["alignment__scale"]
    assert best.module_.alignment.scale == best.alignment.scale


def test_component_params_follow_sklearn_conventions():
    model = CREATERecommender(alignment=InfoNCE(temperature=0.5),
                              graph_encoder=LightGCNEncoder(n_layers=2))
    params = model.get_params()
    assert params["alignment__temperature"] == 0.5 and params["graph_encoder__n_layers"] == 2
    model.set_params(alignment__temperature=0.1)
    assert model.alignment.temperature == 0.1
    copy = clone(model)
    assert copy.alignment is not model.alignment and copy.alignment.temperature == 0.1
    with pytest.raises(ValueError, match="Invalid parameter 'tau' for InfoNCE"):
        model.set_params(alignment__tau=1.0)
    assert repr(BarlowTwins(barlow_lambda=0.01)) == "BarlowTwins(barlow_lambda=0.01)"


def test_builtin_names_read_the_flat_params(synthetic):
    model = CREATERecommender(alignment="contrastive", temperature=0.7, n_layers=2,
                              **FAST).fit(synthetic)
    assert isinstance(model.module_.alignment, InfoNCE)
    assert model.module_.alignment.temperature == 0.7
    assert model.module_.graph.encoder.n_layers == 2


@pytest.mark.parametrize("params, message", [
    (dict(alignment=torch.nn.MSELoss()), "alignment must be one of .* or an instance of "
                                         "skcreate.nn.Alignment"),
    (dict(graph_encoder=LightGCNEncoder), "graph_encoder must be one of"),
    (dict(alignment="barlow", batch_size=1), "needs batch_size >= 2"),
])
def test_bad_parts_are_named(synthetic, params, message):
    with pytest.raises(ValueError, match=message):
        CREATERecommender(**{**FAST, **params}).fit(synthetic)
