"""CREATE: warm-up, shared table, alignment, reductions, model selection."""

import copy
import dataclasses
import functools
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skcreate import CREATERecommender, GlobalTemporalSplit, SASRecRecommender
from skcreate.data.interactions import Interactions, check_interactions
from skcreate.nn import InfoNCE, LightGCNEncoder, ScalableCrossEntropy, UltraGCNEncoder
from skcreate.training import Trainer, train

FAST = dict(n_factors=16, batch_size=64, random_state=0)


def built(synthetic, **params):
    est = CREATERecommender().set_params(**{**FAST, **params})
    est.device_ = torch.device("cpu")
    data, _ = Interactions.from_frame(check_interactions(synthetic), "user_id", "item_id",
                                      "timestamp")
    return est._build(data, np.random.default_rng(0))


def fit_epochs(model, stages, epochs, learning_rate):
    """Train the plan's first ``epochs`` epochs."""
    plan = []
    for stage in stages:
        take = min(stage.epochs, epochs - sum(s.epochs for s in plan))
        if take > 0:
            plan.append(dataclasses.replace(stage, epochs=take))
    return train(model, plan, functools.partial(torch.optim.Adam, lr=learning_rate))


GRAPHS = [{"graph_encoder": "lightgcn"},
          {"graph_encoder": "ultragcn", "graph_encoder__n_negatives": 4}]


@pytest.mark.parametrize("graph", GRAPHS)
def test_warmup_freezes_transformer_and_trains_shared_items(synthetic, graph):
    model, stages = built(synthetic, warmup_epochs=2, **graph)
    before = copy.deepcopy(model.sequence.state_dict())
    result = fit_epochs(model, stages, 2, 1e-2)
    after = model.sequence.state_dict()
    assert set(result.loss_terms) == {"global"}
    for name, value in before.items():
        if name == "encoder.item_table.embedding.weight":
            assert not torch.equal(value, after[name]), "graph gradients reach the shared table"
        else:
            torch.testing.assert_close(value, after[name], msg=name)


def test_joint_epoch_trains_transformer(synthetic):
    model, stages = built(synthetic, warmup_epochs=1)
    before = copy.deepcopy(model.sequence.encoder.blocks.state_dict())
    result = fit_epochs(model, stages, 2, 1e-2)
    assert set(result.loss_terms) == {"global", "local", "align"}
    assert result.loss_terms["local"][0] == 0 and result.loss_terms["local"][1] > 0
    changed = [not torch.equal(v, model.sequence.encoder.blocks.state_dict()[k])
               for k, v in before.items()]
    assert all(changed)


def test_one_item_table_gets_both_gradients(synthetic):
    model, (warmup, joint) = built(synthetic, warmup_epochs=0)
    assert model.graph.item_table.weight is model.sequence.item_table.weight
    table = model.sequence.item_table.weight
    batch = next(joint.batches(0)).sequence
    local, _ = model.sequence.local_and_hidden(batch)
    (local_grad,) = torch.autograd.grad(local, table)
    edge_batch = next(warmup.batches(0)).edges
    global_loss = model.graph.edge_loss(edge_batch, model.graph.propagate())
    (global_grad,) = torch.autograd.grad(global_loss, table)
    assert local_grad[1:].abs().sum() > 0 and global_grad[1:].abs().sum() > 0


@pytest.mark.parametrize("graph", GRAPHS)
def test_alignment_alone_trains_graph_users(synthetic, graph):
    model, stages = built(synthetic, warmup_epochs=0, graph_weight=0.0, **graph)
    before = model.graph.encoder.user_embedding.weight.detach().clone()
    result = fit_epochs(model, stages, 1, 1e-2)
    assert set(result.loss_terms) == {"local", "align"}
    assert not torch.equal(before, model.graph.encoder.user_embedding.weight)


def test_without_graph_and_alignment_it_is_sasrec(synthetic):
    params = dict(epochs=2, **FAST)
    sas = SASRecRecommender(**params).fit(synthetic)
    create = CREATERecommender(alignment="none", graph_weight=0.0, warmup_epochs=0,
                               **params).fit(synthetic)
    assert create.loss_curve_ == sas.loss_curve_
    pd.testing.assert_frame_equal(create.recommend(k=5), sas.recommend(k=5))


def test_inference_uses_sequence_branch_only(synthetic):
    model = CREATERecommender(warmup_epochs=1, epochs=1, **FAST).fit(synthetic)
    new_user = synthetic[synthetic.user_id == 4].assign(user_id="someone-new")
    old_user = synthetic[synthetic.user_id == 4]
    a = model.recommend(new_user, k=5)
    b = model.recommend(old_user, k=5)
    # a new user with the same history is served exactly like the fitted user
    np.testing.assert_array_equal(a.item_id, b.item_id)
    np.testing.assert_allclose(a.score, b.score)
    # user embeddings are never read at inference: scrambling them changes nothing
    with torch.no_grad():
        model.module_.graph.encoder.user_embedding.weight.normal_()
    pd.testing.assert_frame_equal(model.recommend(old_user, k=5), b)


@pytest.mark.parametrize("params", [
    dict(sequence_encoder="bert4rec"),
    dict(graph_encoder=UltraGCNEncoder(n_negatives=4)),
    dict(alignment="barlow"),
    dict(loss=ScalableCrossEntropy(bucket_size_y=16)),
    dict(graph_last_n=3, graph_last_frac=None),
])
def test_variants_train(synthetic, params):
    model = CREATERecommender(warmup_epochs=1, epochs=2, **FAST, **params).fit(synthetic)
    recs = model.recommend(k=4)
    assert recs.groupby("user_id").size().eq(4).all()
    assert np.isfinite(model.loss_curve_).all()
    assert len(model.loss_curve_) == 3 and model.warmup_epochs_ == 1


def test_warmup_epochs_not_validated(synthetic):
    model = CREATERecommender(warmup_epochs=2, epochs=2, trainer=Trainer(early_stopping=True),
                              **FAST).fit(synthetic)
    scores = model.validation_scores_
    assert np.isnan(scores[:2]).all() and np.isfinite(scores[2:]).all()
    # best_epoch_ counts joint epochs, like the epochs parameter
    assert model.best_epoch_ == int(np.nanargmax(scores)) + 1 - 2
    assert model.n_epochs_ == 2 and len(model.epoch_seconds_) == 4


@pytest.mark.parametrize("epochs, expected", [(1, 20), (2, 20), (7, 21), (20, 60), (25, 60)])
def test_auto_warmup_is_three_per_joint_epoch_from_twenty_to_sixty(epochs, expected):
    model = CREATERecommender(epochs=epochs)
    assert model.warmup_epochs == "auto" and model._warmup_epochs == expected
    # the default fit keeps the 60 warm-up epochs its Beauty results were measured with
    assert CREATERecommender()._warmup_epochs == 60
    assert CREATERecommender(epochs=epochs, graph_weight=0.0)._warmup_epochs == 0


def test_auto_warmup_equals_the_explicit_count(synthetic):
    auto = CREATERecommender(epochs=1, **FAST).fit(synthetic)
    explicit = CREATERecommender(epochs=1, warmup_epochs=20, **FAST).fit(synthetic)
    assert auto.warmup_epochs_ == 20 and auto.epoch_stages_ == ["warmup"] * 20 + ["joint"]
    assert auto.loss_curve_ == explicit.loss_curve_
    pd.testing.assert_frame_equal(auto.recommend(k=5), explicit.recommend(k=5))
    # the parameter is stored unchanged; the count run is the fitted attribute
    assert auto.get_params()["warmup_epochs"] == "auto"


def test_progress_bar_names_the_stage(synthetic, capsys):
    CREATERecommender(warmup_epochs=1, epochs=1, trainer=Trainer(verbose=True),
                      **FAST).fit(synthetic)
    err = capsys.readouterr().err
    assert "CREATERecommender [warmup]" in err and "CREATERecommender [joint]" in err


@pytest.mark.parametrize("params, message", [
    (dict(alignment="mse"), "alignment must be one of"),
    (dict(graph_encoder="gcn"), "graph_encoder must be one of"),
    (dict(sequence_encoder="gru"), "sequence_encoder must be one of"),
    (dict(warmup_epochs=-1), "'warmup_epochs' parameter of CREATERecommender must be a str "
                             "among {'auto'} or an int in the range \\[0, inf\\)"),
    (dict(warmup_epochs="Auto"), "'warmup_epochs' parameter of CREATERecommender must be"),
    (dict(warmup_epochs=2.5), "'warmup_epochs' parameter of CREATERecommender must be"),
    (dict(alignment_weight=-0.1), "'alignment_weight' parameter of CREATERecommender must be"),
    (dict(graph_weight=0.0, warmup_epochs=3), "needs graph_weight > 0"),
])
def test_bad_parameters(synthetic, params, message):
    with pytest.raises(ValueError, match=message):
        CREATERecommender(**params).fit(synthetic)


def test_grid_search_over_alignment_weight_on_ml100k(ml100k):
    search = GridSearchCV(
        CREATERecommender(n_factors=16, epochs=1, warmup_epochs=1, random_state=0),
        {"alignment_weight": [0.0, 0.5]}, cv=GlobalTemporalSplit(quantile=0.8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search.fit(ml100k)
    assert search.best_params_["alignment_weight"] in (0.0, 0.5)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    assert search.best_estimator_.alignment_weight == search.best_params_["alignment_weight"]


def test_a_parallel_grid_search_scores_as_a_serial_one(synthetic):
    # after this process's torch threads have run: a child forked now would hang in them
    # (docs/install.md); joblib's workers are fresh processes
    CREATERecommender(epochs=1, warmup_epochs=1, **FAST).fit(synthetic)
    scores = []
    for n_jobs in (1, 2):
        search = GridSearchCV(CREATERecommender(epochs=1, warmup_epochs=1, **FAST),
                              {"alignment_weight": [0.0, 0.5]},
                              cv=GlobalTemporalSplit(quantile=0.8), n_jobs=n_jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            search.fit(synthetic)
        scores.append(search.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(scores[0], scores[1])


def test_training_curves_plot(synthetic, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from skcreate.apps.plotting import plot_training_curves

    model = CREATERecommender(warmup_epochs=2, epochs=2, trainer=Trainer(early_stopping=True),
                              **FAST).fit(synthetic)
    fig = plot_training_curves(model)
    loss_ax, val_ax = fig.axes
    lines = {line.get_label(): line for line in loss_ax.get_lines()}
    assert list(lines) == ["end of warm-up", "total (weighted)", "align (unweighted)",
                           "global (unweighted)", "local (unweighted)"]
    assert len(lines["total (weighted)"].get_xdata()) == 4
    # terms that are off during the warm-up leave a gap instead of a 0 on the log axis
    local = np.asarray(lines["local (unweighted)"].get_ydata(), dtype=float)
    assert np.isnan(local[:2]).all() and (local[2:] > 0).all()
    assert "end of warm-up" in [t.get_text() for t in loss_ax.get_legend().get_texts()]
    # the warm-up boundary is drawn after epoch 2 on both panels
    for ax in (loss_ax, val_ax):
        assert any(line.get_xdata()[0] == 0.5 for line in ax.get_lines())
    fig.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_a_part_by_name_shows_and_takes_the_options_of_its_default_instance():
    est = CREATERecommender()
    params = est.get_params()
    assert params["graph_encoder"] == "lightgcn" and params["graph_encoder__n_layers"] == 1
    assert params["alignment__barlow_lambda"] == 5e-3 and params["alignment__positions"] == "last"
    # setting an option turns the name into its default instance with that option
    est.set_params(graph_encoder__n_layers=2, alignment__positions="all")
    assert repr(est.graph_encoder) == repr(LightGCNEncoder(n_layers=2))
    assert est.alignment.get_params() == {"barlow_lambda": 5e-3, "graph_view": "propagated",
                                          "positions": "all", "stop_gradient": None}
    # a name and its option together: the option applies to that name's part
    est.set_params(alignment="contrastive", alignment__temperature=0.5)
    assert isinstance(est.alignment, InfoNCE) and est.alignment.temperature == 0.5
    with pytest.raises(ValueError, match="alignment__temperature: alignment='none' is no part"):
        CREATERecommender(alignment="none").set_params(alignment__temperature=0.5)
    with pytest.raises(ValueError, match="Invalid parameter 'temperature' for BarlowTwins"):
        CREATERecommender().set_params(alignment__temperature=0.5)
    # the names stay names when nothing of their part is set
    assert CREATERecommender().set_params(epochs=3).get_params(deep=False)["alignment"] \
        == "barlow"


def test_grid_search_over_the_parts_options(synthetic):
    search = GridSearchCV(
        CREATERecommender(epochs=1, warmup_epochs=1, **FAST),
        {"graph_encoder__n_layers": [1, 2], "alignment__barlow_lambda": [5e-3, 0.05]},
        cv=GlobalTemporalSplit(quantile=0.8))
    search.fit(synthetic)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.graph_encoder.n_layers == search.best_params_["graph_encoder__n_layers"]
    assert best.module_.graph.encoder.n_layers == best.graph_encoder.n_layers
    assert best.module_.alignment.barlow_lambda == \
        search.best_params_["alignment__barlow_lambda"]


def test_an_encoder_with_its_own_width_is_refused(synthetic):
    with pytest.raises(ValueError, match="sets its own n_factors.*leave the encoder's "
                                         "n_factors=None"):
        CREATERecommender(graph_encoder=LightGCNEncoder(n_factors=32), **FAST).fit(synthetic)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CREATERecommender(alignment=InfoNCE(), epochs=1, warmup_epochs=0,
                          **FAST).fit(synthetic)


HISTORICAL = {"graph_encoder__propagation": "historical", "graph_encoder__row_sparse": True,
              "graph_encoder__fanout": 3}


@pytest.mark.parametrize("params, own_rows, edges", [
    ({}, False, None),  # "auto" on a graph the encoder trains exactly: full
    (HISTORICAL, True, 512),  # "auto" where its steps are historical: light
    ({"joint_graph_step": "full", **HISTORICAL}, False, None),
    # light on an exact encoder: a quarter of the edges only
    ({"joint_graph_step": "light", "graph_batch_size": 100}, False, 25),
    ({"joint_graph_step": "light", "graph_batch_size": 1}, False, 1),
])
def test_joint_graph_step_sets_the_joint_edges_and_gradients(synthetic, params, own_rows,
                                                             edges):
    model, (warmup, joint) = built(synthetic, **params)
    assert (not model.neighbour_gradients and model.graph.encoder.own_rows_step()) == own_rows
    assert joint.batches.edge_batch_size == edges
    # the warm-up is unchanged
    assert warmup.batches.source.batch_size == params.get("graph_batch_size", 2048)


def test_light_joint_step_sends_graph_gradients_to_its_own_rows_only(synthetic):
    model, (_, joint) = built(synthetic, loss="sce", alignment_weight=0.0, **HISTORICAL)
    model.train()
    batch = next(iter(joint.batches(0)))
    assert len(batch.edges.users) == 512
    model(batch)["global"].backward()
    rows = set(model.graph.encoder.user_embedding.weight.grad.coalesce().indices()[0].tolist())
    assert rows == set(batch.edges.users.tolist())


@pytest.mark.parametrize("params, light", [
    ({}, False),  # "auto" on a graph the encoder trains exactly: full
    (HISTORICAL, True),  # "auto" where its steps are historical: light
    ({"warmup_graph_step": "full", **HISTORICAL}, False),
    ({"warmup_graph_step": "light", **HISTORICAL}, True),
    # light on an exact encoder: every step reads and updates its neighbourhood anyway
    ({"warmup_graph_step": "light"}, False),
])
def test_warmup_graph_step_sets_the_warmup_gradients(synthetic, params, light):
    model, (warmup, joint) = built(synthetic, **params)
    assert (not model.warmup_neighbour_gradients
            and model.graph.encoder.own_rows_step()) == light
    # the warm-up keeps its edges, and the joint step is decided apart
    assert warmup.batches.source.batch_size == 2048
    assert model.neighbour_gradients == ("graph_encoder__propagation" not in params)


def test_light_warmup_step_sends_gradients_to_its_own_rows_only(synthetic):
    steps = {}
    for name in ("full", "light"):
        torch.manual_seed(0)
        model, (warmup, _) = built(synthetic, warmup_graph_step=name, graph_batch_size=64,
                                   **HISTORICAL)
        model.train()
        batch = next(iter(warmup.batches(0)))
        loss = model(batch)["global"]
        loss.backward()
        rows = set(model.graph.encoder.user_embedding.weight.grad.coalesce().indices()[0]
                   .tolist())
        steps[name] = loss.item(), rows, set(batch.edges.users.tolist())
    # the same rows are read, so the same loss; the light step updates its own users only
    assert steps["light"][0] == steps["full"][0]
    assert steps["light"][1] == steps["light"][2]
    assert steps["full"][1] > steps["full"][2]


def test_joint_graph_step_auto_equals_what_it_resolves_to(synthetic):
    small = dict(epochs=1, warmup_epochs=1, graph_batch_size=256, **FAST)
    fits = {name: CREATERecommender(**small).set_params(**extra).fit(synthetic)
            for name, extra in [
        ("auto", {}), ("full", {"joint_graph_step": "full"}),
        ("auto-historical", HISTORICAL),
        ("light-historical", {"joint_graph_step": "light", **HISTORICAL}),
        ("full-historical", {"joint_graph_step": "full", **HISTORICAL}),
        ("light-both-historical", {"joint_graph_step": "light", "warmup_graph_step": "light",
                                   **HISTORICAL}),
        ("full-warmup-historical", {"warmup_graph_step": "full", **HISTORICAL})]}
    assert fits["auto"].loss_curve_ == fits["full"].loss_curve_
    assert fits["auto-historical"].loss_curve_ == fits["light-historical"].loss_curve_
    assert fits["auto-historical"].loss_curve_ == fits["light-both-historical"].loss_curve_
    assert fits["light-historical"].loss_curve_ != fits["full-historical"].loss_curve_
    assert fits["auto-historical"].loss_curve_ != fits["full-warmup-historical"].loss_curve_
    pd.testing.assert_frame_equal(fits["auto-historical"].recommend(k=5),
                                  fits["light-historical"].recommend(k=5))


@pytest.mark.parametrize("name", ["joint_graph_step", "warmup_graph_step"])
def test_graph_step_options_reject_other_values(synthetic, name):
    with pytest.raises(ValueError, match=name):
        CREATERecommender(**{name: "half"}, **FAST).fit(synthetic)


@pytest.mark.parametrize("device, light", [("cpu", True), ("cuda", False)])
def test_auto_joint_graph_step_is_decided_for_the_training_device(synthetic, monkeypatch,
                                                                  device, light):
    # "auto" historical steps on a large graph on a CPU; a GPU propagates in full, so its joint
    # steps stay full (the encoder is built on the CPU either way: _build moves nothing)
    monkeypatch.setattr(LightGCNEncoder, "large_graph", 10)
    est = CREATERecommender().set_params(**FAST)
    est.device_ = torch.device(device)
    data, _ = Interactions.from_frame(check_interactions(synthetic), "user_id", "item_id",
                                      "timestamp")
    model, (_, joint) = est._build(data, np.random.default_rng(0))
    assert model.neighbour_gradients != light
    assert joint.batches.edge_batch_size == (512 if light else None)
    # an explicit historical step is historical on any device
    assert model.graph.encoder.own_rows_step(torch.device(device)) == light
    est.set_params(graph_encoder__propagation="historical")
    model, (_, joint) = est._build(data, np.random.default_rng(0))
    assert not model.neighbour_gradients and joint.batches.edge_batch_size == 512
