"""User-defined CREATE parts: alignments and graph encoders passed as objects."""

import hashlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import skcreate
from skcreate import (CREATERecommender, GlobalTemporalSplit, GraphRecommender,
                      LightGCNRecommender, UltraGCNRecommender)
from skcreate.nn import BarlowTwins, InfoNCE, LightGCNEncoder
from skcreate.apps.persistence import ModelFileError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "custom_parts.py"
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
    # like scikit-learn's estimators, a part prints the options that differ from its defaults
    assert repr(BarlowTwins(barlow_lambda=0.01)) == "BarlowTwins(barlow_lambda=0.01)"
    assert repr(BarlowTwins(positions="all")) == "BarlowTwins(positions='all')"


def test_builtin_names_take_their_options_as_nested_params(synthetic):
    model = CREATERecommender(**FAST).set_params(
        alignment="contrastive", alignment__temperature=0.7, graph_encoder__n_layers=2)
    model.fit(synthetic)
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


@pytest.fixture
def importable_parts(monkeypatch):
    """The example file as the importable module ``custom_parts``, as a user's package is."""
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    monkeypatch.delitem(sys.modules, "custom_parts", raising=False)
    return importlib.import_module("custom_parts")


def test_user_parts_save_by_import_path_and_load_only_from_allowed_modules(
        importable_parts, synthetic, tmp_path, monkeypatch):
    model = CREATERecommender(alignment=importable_parts.CosineAlignment(scale=2.0),
                              graph_encoder=importable_parts.MFEncoder(), **FAST).fit(synthetic)
    path = tmp_path / "m.skc"
    model.save(path)
    params = json.loads(zipfile.ZipFile(path).read("manifest.json"))["params"]
    assert params["alignment"] == {"__component__": "custom_parts:CosineAlignment",
                                   "params": {"scale": 2.0}}
    # without permission nothing is imported; a name that merely starts alike is no permission
    monkeypatch.delitem(sys.modules, "custom_parts")
    for allowed in ((), ["custom"], ["custom_parts_extra"]):
        with pytest.raises(ModelFileError, match=r"allowed_modules=\['custom_parts'\]"):
            skcreate.load(path, allowed_modules=allowed)
        assert "custom_parts" not in sys.modules
    loaded = skcreate.load(path, allowed_modules="custom_parts")
    assert type(loaded.alignment).__module__ == "custom_parts"
    assert loaded.alignment.scale == 2.0
    pd.testing.assert_frame_equal(loaded.recommend(k=5), model.recommend(k=5))
    # and in a fresh process, where the module is found on the path like any package
    out = tmp_path / "recs.csv"
    code = ("import skcreate, sys; skcreate.load(sys.argv[1], allowed_modules=['custom_parts'])"
            ".recommend(k=5).to_csv(sys.argv[2], index=False, float_format='%.17g')")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLE.parent), str(ROOT)]))
    subprocess.run([sys.executable, "-c", code, str(path), str(out)], env=env, check=True)
    pd.testing.assert_frame_equal(pd.read_csv(out), model.recommend(k=5).reset_index(drop=True),
                                  check_dtype=False)


def test_an_allowed_module_must_name_a_component(tmp_path, synthetic):
    model = CREATERecommender(alignment=InfoNCE(), **FAST).fit(synthetic)
    path = tmp_path / "m.skc"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members["manifest.json"])
    manifest["params"]["alignment"] = {"__component__": "collections:OrderedDict",
                                       "params": {}}
    members["manifest.json"] = json.dumps(manifest).encode()
    members["manifest.sha256"] = hashlib.sha256(members["manifest.json"]).hexdigest().encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match="collections:OrderedDict is neither a "
                                             "skcreate.nn.Component"):
        skcreate.load(path, allowed_modules=["collections"])
    with pytest.raises(ValueError, match="allowed_modules must be module names"):
        skcreate.load(path, allowed_modules=[3])


def test_graph_recommender_with_a_builtin_encoder_is_the_single_model_estimator(synthetic):
    run = dict(epochs=2, batch_size=256, learning_rate=1e-2, random_state=0)
    generic = GraphRecommender(LightGCNEncoder(n_factors=16, n_layers=2), **run).fit(synthetic)
    single = LightGCNRecommender(n_factors=16, n_layers=2, **run).fit(synthetic)
    assert generic.loss_curve_ == single.loss_curve_
    pd.testing.assert_frame_equal(generic.recommend(k=5), single.recommend(k=5))
    # the names stand for the built-ins at the single-model estimators' width
    named = GraphRecommender("ultragcn", **run).fit(synthetic)
    assert named.loss_curve_ == UltraGCNRecommender(**run).fit(synthetic).loss_curve_


def test_a_users_graph_encoder_trains_without_create(importable_parts, synthetic, tmp_path):
    encoder = importable_parts.MFEncoder(n_factors=16)
    model = GraphRecommender(encoder, epochs=3, batch_size=256, random_state=0).fit(synthetic)
    assert isinstance(model.module_.encoder, importable_parts.MFEncoder)
    assert model.module_.encoder is not encoder and not hasattr(encoder, "user_embedding")
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    recs = model.recommend(k=5)
    assert recs.groupby("user_id").size().eq(5).all()
    model.save(tmp_path / "mf.skc")
    loaded = skcreate.load(tmp_path / "mf.skc", allowed_modules=["custom_parts"])
    pd.testing.assert_frame_equal(loaded.recommend(k=5), recs)


def test_graph_recommender_tunes_its_encoder_as_graph_encoder_params(synthetic):
    search = GridSearchCV(
        GraphRecommender(LightGCNEncoder(n_factors=8), epochs=1, batch_size=512,
                         random_state=0),
        {"graph_encoder__n_layers": [1, 2], "graph_encoder__n_factors": [8, 16]},
        cv=GlobalTemporalSplit(quantile=0.8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search.fit(synthetic)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.module_.encoder.user_embedding.weight.shape[1] == \
        search.best_params_["graph_encoder__n_factors"]


@pytest.mark.parametrize("encoder, message", [
    ("mf", r"graph_encoder must be one of \['lightgcn', 'ultragcn'\]"),
    (BarlowTwins(), "graph_encoder must be one of"),
    (LightGCNEncoder(), "needs n_factors when no item table")])
def test_graph_recommender_names_a_bad_encoder(encoder, message, synthetic):
    with pytest.raises(ValueError, match=message):
        GraphRecommender(encoder, epochs=1).fit(synthetic)
