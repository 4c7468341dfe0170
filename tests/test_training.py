"""The training loop: stages, loss weights, callbacks, optimiser choice, validation."""

import functools

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skcreate import (CREATERecommender, LightGCNRecommender, SASRecRecommender,
                      UltraGCNRecommender)
from skcreate.data.datasets import make_interactions
from skcreate.training import Callback, Stage, Trainer, train

FAST = dict(n_factors=16, batch_size=64, random_state=0)


class Toy(torch.nn.Module):
    """Two parameters, two terms; a batch names the terms to compute."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(3.0))
        self.b = torch.nn.Parameter(torch.tensor(-2.0))

    def forward(self, batch):
        terms = {}
        if "a" in batch:
            terms["a"] = (self.a - batch["a"]).pow(2)
        if "b" in batch:
            terms["b"] = (self.b - batch["b"]).pow(2)
        return terms


def batches(*keys, n=2):
    def source(epoch):
        for _ in range(n):
            yield {key: torch.tensor(0.0) for key in keys}
    return source


def sgd(lr=0.1):
    return functools.partial(torch.optim.SGD, lr=lr)


def test_stages_run_in_order_and_train_only_their_terms():
    model = Toy()
    result = train(model, [Stage("first", 2, batches("a"), validate=False),
                           Stage("second", 3, batches("a", "b"))], sgd())
    assert result.epoch_stages == ["first"] * 2 + ["second"] * 3
    assert result.n_epochs == 3 and result.best_epoch == 3
    # b receives no gradient in the first stage: its term is recorded as 0 there
    assert result.loss_terms["b"][:2] == [0.0, 0.0] and result.loss_terms["b"][2] > 0
    assert len(result.loss_curve) == len(result.epoch_seconds) == 5


def test_weights_scale_the_total_not_the_terms():
    a = train(Toy(), [Stage("s", 1, batches("a", n=1), {"a": 3.0})], sgd(0.0))
    b = train(Toy(), [Stage("s", 1, batches("a", n=1))], sgd(0.0))
    assert a.loss_terms["a"] == b.loss_terms["a"] == [9.0]
    assert a.loss_curve == [27.0] and b.loss_curve == [9.0]


def test_weighted_gradient_is_the_weighted_sum():
    model = Toy()
    train(model, [Stage("s", 1, batches("a", "b", n=1), {"a": 0.5, "b": 2.0})], sgd(0.1),
          clip_norm=None)
    # d/da 0.5 (a - 0)^2 = a = 3; d/db 2 (b - 0)^2 = 4b = -8
    assert model.a.item() == pytest.approx(3.0 - 0.1 * 3.0)
    assert model.b.item() == pytest.approx(-2.0 + 0.1 * 8.0)


def test_optimiser_factory_is_used_once_for_all_stages():
    made = []

    def factory(parameters):
        optimiser = torch.optim.SGD(parameters, lr=0.0)
        made.append(optimiser)
        return optimiser

    model = Toy()
    train(model, [Stage("x", 1, batches("a")), Stage("y", 1, batches("b"))], factory)
    assert len(made) == 1 and isinstance(made[0], torch.optim.SGD)
    assert model.a.item() == 3.0 and model.b.item() == -2.0  # lr 0: nothing moved


def test_estimator_optimizer_is_adam_with_its_learning_rate():
    model = SASRecRecommender(epochs=1, learning_rate=0.003, weight_decay=0.01, **FAST)
    optimiser = model._optimizer(torch.nn.Linear(1, 1))([torch.nn.Parameter(torch.zeros(1))])
    assert isinstance(optimiser, torch.optim.Adam)
    assert optimiser.defaults["lr"] == 0.003 and optimiser.defaults["weight_decay"] == 0.01


def test_callbacks_per_step_and_per_epoch():
    calls = []

    class Recorder(Callback):
        def on_step_end(self, step, terms):
            # device tensors, not host floats: the loop never synchronises per step
            assert all(isinstance(v, torch.Tensor) for v in terms.values())
            calls.append(("step", step))

        def on_epoch_end(self, record):
            calls.append(("epoch", record.epoch, record.stage, record.loss))

    plain = []
    result = train(Toy(), [Stage("s", 2, batches("a", n=3))], sgd(),
                   callbacks=[Recorder(), lambda epoch, elapsed, loss: plain.append(
                       (epoch, elapsed >= 0, loss))])
    assert [c[1] for c in calls if c[0] == "step"] == list(range(1, 7))
    epochs = [c for c in calls if c[0] == "epoch"]
    assert [(c[1], c[2]) for c in epochs] == [(1, "s"), (2, "s")]
    assert [c[3] for c in epochs] == result.loss_curve
    assert plain == [(1, True, result.loss_curve[0]), (2, True, result.loss_curve[1])]


def test_callback_returning_true_stops_training():
    result = train(Toy(), [Stage("s", 10, batches("a"))], sgd(),
                   callbacks=[lambda epoch, elapsed, loss: epoch == 3])
    assert len(result.loss_curve) == 3 and result.n_epochs == 3


def test_unvalidated_stage_records_nan_and_keeps_no_weights():
    scores = iter([0.3, 0.9, 0.1, 0.2])
    model = Toy()
    result = train(model, [Stage("warm", 2, batches("b"), validate=False),
                           Stage("main", 4, batches("a"))], sgd(),
                   validate=lambda: next(scores), patience=2)
    assert np.isnan(result.validation_scores[:2]).all()
    assert result.validation_scores[2:] == [0.3, 0.9, 0.1, 0.2]
    # patience counts validated epochs: best at the second, two without improvement after
    assert result.best_epoch == 2 and result.n_epochs == 4


def test_estimator_callbacks_see_every_create_stage(synthetic):
    stages = []

    class Stages(Callback):
        def on_epoch_end(self, record):
            stages.append(record.stage)

    model = CREATERecommender(warmup_epochs=2, epochs=1, trainer=Trainer(callbacks=[Stages()]),
                              **FAST).fit(synthetic)
    assert stages == ["warmup", "warmup", "joint"] == model.epoch_stages_
    assert model.warmup_epochs_ == 2 and model.n_epochs_ == 1


def test_no_user_to_learn_from_is_an_error(tiny):
    one_each = tiny.drop_duplicates("user_id")
    with pytest.raises(ValueError, match="No user has two or more interactions"):
        SASRecRecommender(epochs=1, **FAST).fit(one_each)


def test_diverging_loss_stops_with_a_named_error_and_leaves_no_fitted_model(synthetic,
                                                                            tmp_path):
    model = SASRecRecommender(epochs=3, learning_rate=1e8, **FAST)
    with pytest.raises(FloatingPointError, match=r"local loss became nan in epoch \d .*"
                                                 r"learning rate \(now 1e\+08\)"):
        model.fit(synthetic)
    # no diverged weights to serve or save
    with pytest.raises(NotFittedError):
        model.recommend(k=3)
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "model.skc")
    assert not (tmp_path / "model.skc").exists()


def test_a_failed_refit_leaves_no_attribute_of_the_earlier_fit(synthetic):
    model = SASRecRecommender(epochs=1, **FAST).fit(synthetic)
    assert model.recommend(k=3).shape[0] > 0
    with pytest.raises(FloatingPointError):
        model.set_params(epochs=3, learning_rate=1e8).fit(synthetic.iloc[:2000])
    assert not [name for name in vars(model) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        model.recommend(k=3)
    # and a refit that fails validation leaves the estimator unfitted too
    model.set_params(learning_rate=1e-3).fit(synthetic)
    with pytest.raises(ValueError, match="learning_rate"):
        model.set_params(learning_rate=-1.0).fit(synthetic)
    with pytest.raises(NotFittedError):
        model.recommend(k=3)


@pytest.mark.parametrize("estimator", [LightGCNRecommender, UltraGCNRecommender,
                                       SASRecRecommender, CREATERecommender],
                         ids=lambda estimator: estimator.__name__)
def test_every_neural_estimator_reports_divergence_alike(estimator):
    # the graph models' losses explode (1e16) without becoming NaN: the same error applies
    df = make_interactions(n_users=60, n_items=40, random_state=0)
    params = dict(warmup_epochs=1) if estimator is CREATERecommender else {}
    model = estimator(epochs=3, learning_rate=1e8, random_state=0, **params)
    with pytest.raises(FloatingPointError, match=r"loss (became nan|exploded to \S+ \(over "
                                                 r"1e\+06 times its initial scale\)) in epoch "
                                                 r"\d .*learning rate \(now 1e\+08\)"):
        model.fit(df)
    with pytest.raises(NotFittedError):
        model.recommend(k=3)


def test_an_exploding_loss_stops_training_and_restores_the_epoch_before():
    def growing(epoch):
        # a finite loss, 1 then 1e4 then 1e8: past 1e6 times its start in epoch 3
        yield {"a": torch.tensor(3 + 10.0 ** (2 * epoch), dtype=torch.float64)}

    model = Toy()
    with pytest.raises(FloatingPointError, match=r"The a loss exploded to 1e\+08 .*in epoch 3 "):
        train(model, [Stage("s", 5, growing)], sgd(lr=0.0))


def test_a_loss_that_grows_moderately_is_not_an_explosion():
    def growing(epoch):
        yield {"a": torch.tensor(3 + 10.0 ** (epoch / 2), dtype=torch.float64)}

    result = train(Toy(), [Stage("s", 4, growing)], sgd(lr=0.0))
    assert len(result.loss_curve) == 4


def test_interrupt_before_the_first_epoch_says_no_weights_were_trained():
    def interrupted(epoch):
        raise KeyboardInterrupt
        yield

    model = Toy()
    with pytest.warns(UserWarning, match="after 0 epoch.*the weights are the initial ones"):
        result = train(model, [Stage("s", 3, interrupted)], sgd())
    assert result.interrupted and model.a.item() == 3.0


class CtrlC(Callback):
    """Presses Ctrl-C at the end of the first epoch of every fit."""

    def __init__(self):
        self.fits = 0

    def on_epoch_end(self, record):
        if record.epoch == 1:
            self.fits += 1
            raise KeyboardInterrupt


def test_ctrl_c_reraises_and_leaves_the_estimator_unfitted(synthetic):
    # a successful fit first: its attributes must not survive the interrupted refit
    model = SASRecRecommender(epochs=1, **FAST).fit(synthetic)
    model.set_params(epochs=3, trainer__callbacks=[CtrlC()])
    with pytest.warns(UserWarning, match="interrupted after 1 epoch"), \
            pytest.raises(KeyboardInterrupt, match="left unfitted.*on_interrupt='stop'"):
        model.fit(synthetic)
    assert not [name for name in vars(model) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        model.recommend(k=3)


def test_ctrl_c_stops_a_grid_search(synthetic):
    from sklearn.model_selection import GridSearchCV

    from skcreate import GlobalTemporalSplit

    fits = []

    class Counted(CtrlC):
        # GridSearchCV clones the callbacks with the estimator: count at class level
        def on_epoch_end(self, record):
            fits.append(record.epoch)
            super().on_epoch_end(record)

    search = GridSearchCV(SASRecRecommender(epochs=3, trainer=Trainer(callbacks=[Counted()]),
                                            **FAST),
                          {"dropout": [0.1, 0.2, 0.3]}, cv=GlobalTemporalSplit(0.8))
    with pytest.warns(UserWarning), pytest.raises(KeyboardInterrupt):
        search.fit(synthetic)
    # the first candidate's interruption ends the search: no score of a partial fit is kept
    assert fits == [1] and not hasattr(search, "cv_results_")


def test_ctrl_c_can_be_asked_to_return(synthetic):
    model = SASRecRecommender(epochs=3, trainer=Trainer(callbacks=[CtrlC()], on_interrupt="stop"),
                              **FAST)
    with pytest.warns(UserWarning, match="interrupted after 1 epoch"):
        assert model.fit(synthetic) is model
    assert model.interrupted_ and model.n_epochs_ == 1
    with pytest.raises(ValueError, match="'on_interrupt' parameter of Trainer"):
        SASRecRecommender(trainer=Trainer(on_interrupt="ignore")).fit(synthetic)


def test_no_user_to_learn_from_is_an_error_for_bert4rec_too(tiny):
    with pytest.raises(ValueError, match="No user has two or more interactions"):
        CREATERecommender(sequence_encoder="bert4rec", epochs=1, warmup_epochs=0,
                          **FAST).fit(tiny.drop_duplicates("user_id"))
