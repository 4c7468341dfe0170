"""The Trainer: run settings of every neural estimator in one object, reached as trainer__<name>."""

import pytest
from sklearn.base import clone

from skcreate import CREATERecommender, GraphRecommender, LightGCNRecommender, SASRecRecommender
from skcreate.data.datasets import make_interactions
from skcreate.training import Trainer

NEURAL = [SASRecRecommender, CREATERecommender, LightGCNRecommender, GraphRecommender]


@pytest.mark.parametrize("cls", NEURAL)
def test_none_stands_for_the_default_trainer_and_its_options_are_nested(cls):
    est = cls()
    assert est.trainer is None
    params = est.get_params()
    assert params["trainer__early_stopping"] is False and params["trainer__device"] == "cpu"
    est.set_params(trainer__early_stopping=True, trainer__patience=2)
    assert repr(est.trainer) == "Trainer(early_stopping=True, patience=2)"
    # a clone gets its own trainer: tuning one estimator's never changes another's
    copy = clone(est).set_params(trainer__patience=7)
    assert est.trainer.patience == 2 and copy.trainer.patience == 7


@pytest.mark.parametrize("options, match", [
    ({"patience": 0}, "'patience' parameter of Trainer"),
    ({"validation_quantile": 1.0}, "'validation_quantile' parameter of Trainer"),
    ({"on_interrupt": "ignore"}, "'on_interrupt' parameter of Trainer"),
    ({"distributed": True}, "'distributed' parameter of Trainer"),
    ({"precision": "fp16"}, "'precision' parameter of Trainer"),
    ({"verbose": 1}, "'verbose' parameter of Trainer"),
    ({"device": "tpu"}, "device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"),
    ({"checkpoint_path": "/no/such/folder/fit.ckpt"}, "does not exist"),
])
def test_bad_options_are_refused_at_fit_naming_the_trainer(options, match):
    X = make_interactions(n_users=30, n_items=10, random_state=0)
    model = SASRecRecommender(n_factors=8, epochs=1, trainer=Trainer(**options))
    with pytest.raises(ValueError, match=match) as error:
        model.fit(X)
    assert str(error.value).startswith("trainer: ")
    assert not hasattr(model, "module_")


def test_a_trainer_that_is_not_one_is_refused_by_name():
    X = make_interactions(n_users=30, n_items=10, random_state=0)
    with pytest.raises(ValueError, match=r"trainer must be one of \[None\] or an instance of "
                                         r"skcreate\.training\.Trainer, got 'fast'"):
        SASRecRecommender(trainer="fast").fit(X)


def test_the_trainer_passed_is_not_changed_by_a_fit():
    X = make_interactions(n_users=60, n_items=20, random_state=0)
    trainer = Trainer(early_stopping=True, patience=1)
    model = SASRecRecommender(n_factors=8, epochs=2, random_state=0, trainer=trainer).fit(X)
    assert model.trainer is trainer and repr(trainer) == "Trainer(early_stopping=True, patience=1)"
    assert len(model.validation_scores_) == model.n_epochs_
