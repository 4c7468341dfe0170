"""Shared behaviour of the neural estimators: building, serving and saving a torch network.

How a fit runs (device, early stopping, checkpoints...) is the estimator's ``trainer``
(:class:`skcreate.training.Trainer`).
"""

import copy
import functools
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from .base import BaseRecommender
from ..data.interactions import check_k
from ..nn.optim import LazyAdam, has_row_sparse_gradients
from ..nn.registry import Shortcuts
from ..training import Trainer

__all__ = ["NeuralRecommender", "TRAINERS", "seeded_generator", "check_average_epochs"]

#: what ``trainer`` accepts besides a :class:`~skcreate.training.Trainer`: None, the default
TRAINERS = Shortcuts(Trainer, {None: Trainer})


def check_average_epochs(value):
    """Validate partial_fit's ``average_epochs``: None (its default) or an integer >= 1."""
    return value if value is None else check_k(value, "average_epochs")


def seeded_generator(offset=0):
    """A CPU generator derived from the current torch seed (set by the estimator's fit)."""
    return torch.Generator().manual_seed(torch.initial_seed() + offset)


class NeuralRecommender(BaseRecommender):
    """Base of the torch estimators.

    Subclasses implement ``_build(data, rng)`` returning ``(module, stages)`` for
    :func:`skcreate.training.train` (a module whose ``forward(batch)`` returns its named loss
    terms, and the training plan), and ``_score(data, rows)``; their ``trainer``
    (:class:`~skcreate.training.Trainer`) runs the fit: the device, the early-stopping split
    and its validation by NDCG@10, checkpoints, data parallelism under torchrun (every rank
    builds the same model, trains on its shards of the batches and ends with the same
    weights; see :mod:`skcreate.training.distributed`).
    """

    _parts = {"trainer": TRAINERS}

    _parameter_constraints: dict = {
        **BaseRecommender._parameter_constraints,
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
    }

    @property
    def _trainer(self):
        return TRAINERS.resolve(self.trainer)

    def _optimizer(self, module):
        """The optimiser factory for the built ``module``: LazyAdam where some table gives
        row-sparse gradients (it then updates only the rows a step read)."""
        optimizer = LazyAdam if has_row_sparse_gradients(module) else torch.optim.Adam
        return functools.partial(optimizer, lr=self.learning_rate,
                                 weight_decay=self.weight_decay)

    def _fit(self, data):
        trainer = self._trainer
        result = trainer.fit(self, data)
        self.loss_curve_ = result.loss_curve
        self.loss_terms_ = result.loss_terms
        self.validation_scores_ = result.validation_scores
        self.epoch_seconds_ = result.epoch_seconds
        self.epoch_stages_ = result.epoch_stages
        # counted like the ``epochs`` parameter (a warm-up stage excluded), so that the
        # protocol's "retrain for best_epoch_ epochs" is set_params(epochs=best_epoch_)
        self.best_epoch_ = result.best_epoch
        self.n_epochs_ = result.n_epochs
        self.interrupted_ = result.interrupted
        self.resumed_epochs_ = result.resumed_epochs
        self.optimizer_state_ = result.optimizer_state
        if result.interrupted and trainer.on_interrupt == "raise":
            # re-raising stops whatever called fit (a search, a script); BaseRecommender.fit
            # then leaves the estimator unfitted, as after any failed fit
            raise KeyboardInterrupt(f"{type(self).__name__}.fit interrupted after "
                                    f"{len(self.loss_curve_)} epoch(s); the estimator is left "
                                    "unfitted (on_interrupt='stop' keeps the weights so far).")

    #: run settings: an update may use others than the fit
    _free_params = BaseRecommender._free_params | {"learning_rate", "batch_size", "epochs",
                                                   "weight_decay", "trainer"}

    def _partial_fit(self, data, touched, epochs, warmup_epochs=0, fold_in=False,
                     new_item_step=1.0, average_epochs=1):
        # a third of the fit's epochs by default: on Amazon Beauty's validation split
        # (SASRec) 5 update epochs of 15 matched a refit, 15 fell below the model before
        # the update (benchmarks/results/partial-fit-beauty-validation.md)
        epochs = epochs or max(1, round(self.epochs / 3))
        if average_epochs is None:
            average_epochs = (epochs + 1) // 2
        elif average_epochs > epochs:
            raise ValueError(f"average_epochs={average_epochs} exceeds the update's "
                             f"epochs={epochs}.")
        result = self._trainer.partial_fit(self, data, touched, epochs, warmup_epochs,
                                           fold_in, new_item_step, average_epochs)
        for name in ("loss_curve", "epoch_seconds", "epoch_stages"):
            getattr(self, f"{name}_").extend(getattr(result, name))
        if self.validation_scores_:  # aligned with the loss curve: the update's are not scored
            self.validation_scores_.extend([float("nan")] * len(result.loss_curve))
        for name, values in result.loss_terms.items():
            self.loss_terms_.setdefault(name, []).extend(values)
        self.optimizer_state_ = result.optimizer_state
        self.interrupted_ = result.interrupted

    def _update_stages(self, module, stages):
        """The stages of an update, built from its users' data, made to agree with
        ``module``, built from all of it (the estimator's ``_build``)."""
        return stages

    def _restore(self, state_dict):
        # the network is rebuilt exactly as at fit (same data and parameters), then given the
        # saved weights: a model file holds tensors, never code
        train_data, trainer = self.interactions_, self._trainer
        if trainer.early_stopping and not trainer.retrain_on_all:
            train_data, _ = trainer.validation_split(self.interactions_)
        # first without memory: a file's parameters (say max_len=3e8) must not allocate a
        # network its weights do not match
        try:
            with torch.random.fork_rng(devices=[]), torch.device("meta"):
                shapes, _ = self._build(train_data, np.random.default_rng(0))
        except Exception:
            # a user's part (from a module the caller allowed) may need real tensors to build
            shapes = None
        expected = saved = {}
        if shapes is not None:
            expected = {name: tuple(value.shape) for name, value in shapes.state_dict().items()}
            saved = {name: tuple(value.shape) for name, value in state_dict.items()}
        if expected != saved:
            differ = sorted(name for name in expected.keys() | saved.keys()
                            if expected.get(name) != saved.get(name))
            detail = ", ".join(f"{name} {saved.get(name)} saved, {expected.get(name)} built"
                               for name in differ[:3])
            raise ValueError(f"the weights do not fit the network of these parameters: "
                             f"{detail}.")
        with torch.random.fork_rng(devices=[]):
            module, _ = self._build(train_data, np.random.default_rng(0))
        module.load_state_dict(state_dict)
        self.module_ = module.to(self.device_).eval()

    def __getstate__(self):
        # pickles load on machines without the training device
        state = super().__getstate__()
        if "module_" in state:
            state = dict(state, module_=copy_to_cpu(state["module_"]))
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "module_" in state:
            self.device_ = torch.device("cpu")


def copy_to_cpu(module):
    """The module itself if already on CPU, else a CPU copy (training device untouched)."""
    parameter = next(module.parameters(), None)
    if parameter is None or parameter.device.type == "cpu":
        return module
    return copy.deepcopy(module).cpu()
