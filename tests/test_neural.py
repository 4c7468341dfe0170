"""Training engine and neural estimators: seeding, early stopping, interruption, quality."""

import functools
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from skcreate import (CREATERecommender, GlobalTemporalSplit, LeaveLastOutSplit,
                      LightGCNRecommender, PopularRecommender, SASRecRecommender,
                      UltraGCNRecommender)
from skcreate.nn import ScalableCrossEntropy
from skcreate.training import Stage, Trainer, train
from skcreate.training.trainer import _validation_score

FAST = dict(n_factors=16, batch_size=64, random_state=0)


def test_same_seed_same_weights(synthetic):
    a = SASRecRecommender(epochs=2, **FAST).fit(synthetic)
    b = SASRecRecommender(epochs=2, **FAST).fit(synthetic)
    c = SASRecRecommender(epochs=2, **{**FAST, "random_state": 1}).fit(synthetic)
    for (name, p), q, r in zip(a.module_.state_dict().items(), b.module_.state_dict().values(),
                               c.module_.state_dict().values()):
        torch.testing.assert_close(p, q, msg=name)
    assert not torch.equal(a.module_.encoder.catalogue_weight,
                           c.module_.encoder.catalogue_weight)
    assert a.loss_curve_ == b.loss_curve_


def test_global_torch_rng_untouched(synthetic):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    SASRecRecommender(epochs=1, **FAST).fit(synthetic)
    torch.testing.assert_close(torch.rand(3), expected)


def test_loss_decreases_and_curves_recorded(synthetic):
    model = SASRecRecommender(epochs=4, **FAST).fit(synthetic)
    assert len(model.loss_curve_) == 4 == model.n_epochs_
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    assert model.validation_scores_ == []


def test_early_stopping_restores_best(synthetic):
    model = SASRecRecommender(epochs=30, trainer=Trainer(early_stopping=True, patience=2),
                              learning_rate=0.05, **FAST).fit(synthetic)
    scores = model.validation_scores_
    assert len(scores) == model.n_epochs_
    assert model.best_epoch_ == int(np.argmax(scores)) + 1
    if model.n_epochs_ < 30:
        assert model.n_epochs_ - model.best_epoch_ == 2
    # the kept weights are the best epoch's: re-scoring validation reproduces the best score
    history, targets = model.trainer.validation_split(model.interactions_)[1]
    assert _validation_score(model, history, targets) == pytest.approx(max(scores))


def test_sasrec_beats_popularity_on_synthetic_order(synthetic):
    train_idx, test_idx = next(GlobalTemporalSplit(0.8).split(synthetic))
    train, test = synthetic.iloc[train_idx], synthetic.iloc[test_idx]
    pop = PopularRecommender().fit(train).score(test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sas = SASRecRecommender(epochs=15, learning_rate=5e-3, **FAST).fit(train).score(test)
    assert sas > 2 * pop


def test_sasrec_beats_popularity_on_ml100k(ml100k):
    # leave-last-out scores all 943 users; the temporal split keeps ~110, too few to rank models
    train_idx, test_idx = next(LeaveLastOutSplit().split(ml100k))
    train, test = ml100k.iloc[train_idx], ml100k.iloc[test_idx]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pop = PopularRecommender().fit(train).score(test)
        sas = SASRecRecommender(epochs=10, random_state=0).fit(train).score(test)
    assert sas > 1.15 * pop, (sas, pop)


def test_sce_trains(synthetic):
    model = SASRecRecommender(epochs=3, loss=ScalableCrossEntropy(bucket_size_y=32),
                              **FAST).fit(synthetic)
    assert model.loss_curve_[-1] < model.loss_curve_[0]


@pytest.mark.parametrize("cls", [LightGCNRecommender, UltraGCNRecommender])
def test_graph_fold_in_for_unseen_users(cls, synthetic):
    model = cls(epochs=2, **FAST).fit(synthetic)
    user = synthetic[synthetic.user_id == 5]
    as_new = user.assign(user_id="brand-new")
    new = model.recommend(as_new, k=5, )
    # the unseen user is served from its history: the mean of its items' embeddings
    _, items = model.module_.encoder.propagate()
    codes = model.item_ids_.get_indexer(user.item_id.unique())
    state = items[codes].mean(0)
    scores = (items @ state).detach().numpy()
    scores[codes] = -np.inf
    assert list(new.item_id) == list(model.item_ids_[np.argsort(-scores)[:5]])
    # a seen user keeps its fitted embedding
    seen = model.recommend(user, k=5)
    assert list(seen.item_id) == list(model.recommend(k=5).query("user_id == 5").item_id)


@pytest.mark.parametrize("cls", [LightGCNRecommender, UltraGCNRecommender])
def test_graph_serving_propagates_once_while_the_weights_stay(cls, synthetic, monkeypatch):
    model = cls(epochs=1, **FAST).fit(synthetic)
    encoder = model.module_.encoder
    calls = []
    propagate = encoder.propagate
    monkeypatch.setattr(encoder, "propagate",
                        lambda *args, **kwargs: calls.append(1) or propagate(*args, **kwargs))
    first = model.recommend(k=5)
    pd.testing.assert_frame_equal(model.recommend(synthetic[synthetic.user_id < 9], k=5),
                                  first[first.user_id < 9].reset_index(drop=True))
    assert len(calls) == 1
    # an in-place change, as an optimiser step or load_state_dict makes, is seen
    with torch.no_grad():
        encoder.user_embedding.weight.mul_(-1)
    changed = model.recommend(k=5)
    assert len(calls) == 2
    assert not changed.equals(first)
    # the pickle leaves the propagated tables out, and its copy serves the same
    monkeypatch.undo()
    copy = pickle.loads(pickle.dumps(model))
    assert "_propagation" not in vars(copy)
    pd.testing.assert_frame_equal(copy.recommend(k=5), changed)


def test_graph_last_n_limits_edges(synthetic):
    model = LightGCNRecommender(epochs=1, graph_last_n=2, **FAST).fit(synthetic)
    n_users = synthetic.user_id.nunique()
    assert model.module_.encoder.adjacency._nnz() <= 2 * 2 * n_users


def test_ctrl_c_keeps_best_weights():
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, batch):
            return {"local": (self.linear.weight - 1).pow(2).sum()}

    def batches(epoch):
        if epoch == 3:
            raise KeyboardInterrupt
        yield {}

    scores = iter([0.1, 0.5, 0.2])
    with pytest.warns(UserWarning, match="interrupted after 3 epoch"):
        result = train(Model(), [Stage("train", 10, batches)],
                       functools.partial(torch.optim.Adam, lr=0.1),
                       validate=lambda: next(scores))
    assert result.interrupted and result.best_epoch == 2
    assert result.validation_scores == [0.1, 0.5, 0.2]


def test_verbose_progress_shows_loss_and_validation(synthetic, capsys):
    SASRecRecommender(epochs=1, trainer=Trainer(verbose=True, early_stopping=True),
                      **FAST).fit(synthetic)
    err = capsys.readouterr().err
    assert "loss=" in err and "val_ndcg@10=" in err


def test_validation_split_failure_is_explained(tiny):
    with pytest.raises(ValueError, match="early_stopping needs a validation split"):
        SASRecRecommender(epochs=1, trainer=Trainer(early_stopping=True), **FAST).fit(tiny)


def test_fit_does_not_mutate_input(synthetic):
    before = synthetic.copy()
    SASRecRecommender(epochs=1, **FAST).fit(synthetic)
    pd.testing.assert_frame_equal(synthetic, before)


@pytest.mark.parametrize("cls, params, changes", [
    (SASRecRecommender, {}, dict(max_len=3, n_factors=8, loss="sce")),
    (CREATERecommender, dict(sequence_encoder="bert4rec", warmup_epochs=1),
     dict(sequence_encoder="sasrec", sequence_encoder__max_len=2, graph_encoder="ultragcn")),
    (LightGCNRecommender, {}, dict(n_layers=1, n_factors=4)),
])
def test_set_params_after_fit_does_not_change_what_is_served(cls, params, changes, synthetic):
    model = cls(epochs=1, **FAST, **params).fit(synthetic)
    histories = synthetic[synthetic.user_id < 20]
    before = model.recommend(histories, k=5)
    model.set_params(**changes)
    pd.testing.assert_frame_equal(model.recommend(histories, k=5), before)


@pytest.mark.parametrize("cls, params", [
    ("SASRecRecommender", dict(n_factors=8, epochs=6)),
    ("CREATERecommender", dict(n_factors=8, epochs=4, warmup_epochs=1, graph_batch_size=128)),
])
def test_retrain_on_all_refits_all_the_data_for_the_chosen_epochs(cls, params, tmp_path):
    import skcreate
    from skcreate.data.datasets import make_interactions

    df = make_interactions(n_users=150, n_items=60, random_state=0)
    est_class = getattr(skcreate, cls)
    selected = est_class(trainer=Trainer(early_stopping=True, patience=2), random_state=0,
                         **params).fit(df)
    final = est_class(trainer=Trainer(early_stopping=True, patience=2, retrain_on_all=True),
                      random_state=0, **params).fit(df)
    assert final.best_epoch_ == selected.best_epoch_
    np.testing.assert_array_equal(final.validation_scores_, selected.validation_scores_)
    # the retrain runs best_epoch_ validated epochs on all the data, warm-up kept
    assert final.n_epochs_ == max(selected.best_epoch_, 1)
    assert final.epoch_stages_.count("warmup") == selected.epoch_stages_.count("warmup")
    assert len(final.train_user_ids_) == df.user_id.nunique() > len(selected.train_user_ids_)
    # the same as fitting all the data for that many epochs, without early stopping
    plain = est_class(random_state=0, **{**params, "epochs": final.n_epochs_}).fit(df)
    assert final.loss_curve_ == plain.loss_curve_
    assert final.recommend(df, k=5).equals(plain.recommend(df, k=5))
    path = tmp_path / "model.skc"
    final.save(path)
    assert skcreate.load(path).recommend(df, k=5).equals(final.recommend(df, k=5))


@pytest.mark.parametrize("device", ["meta", "mps", "tpu", "cuda:x", 3])
def test_unusable_devices_are_refused_by_name(device, tiny):
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"):
        SASRecRecommender(epochs=1, n_factors=8, trainer=Trainer(device=device)).fit(tiny)


@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cuda")])
def test_cuda_without_cuda_is_refused(device, tiny, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        SASRecRecommender(epochs=1, n_factors=8, trainer=Trainer(device=device)).fit(tiny)
