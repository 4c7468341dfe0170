"""Shared behaviour of the neural estimators: seeding, device, validation split, training."""

import contextlib
import copy
import dataclasses
import functools
import hashlib
import numbers
import os

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state

from ._version import __version__
from . import distributed as dist
from .base import BaseRecommender
from .checkpoint import Checkpoint
from .interactions import Interactions
from .metrics import ndcg_at_k
from .model_selection import split_history_target, temporal_validation_split
from .training import train

__all__ = ["NeuralRecommender", "resolve_device", "seeded_generator"]

# parameters that change how a fit is watched or saved, not what it computes
_RUN_PARAMS = ("verbose", "callbacks", "on_interrupt", "checkpoint_path", "checkpoint_every")


def resolve_device(device):
    """Map "cpu", "cuda", "cuda:N", "auto" (or such a torch.device) to a usable torch.device."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    # other kinds (meta, mps, xpu...) parse but are neither built for nor tested here
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}.")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; "
                         "use device='cpu' or 'auto'.")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} "
                         f"CUDA device(s).")
    return resolved


def seeded_generator(offset=0):
    """A CPU generator derived from the current torch seed (set by the estimator's fit)."""
    return torch.Generator().manual_seed(torch.initial_seed() + offset)


def check_param(estimator, name, kind, low=None, high=None, low_open=False, high_open=False):
    """Check one constructor parameter; raise a ValueError naming it."""
    value = getattr(estimator, name)
    number = numbers.Integral if kind is int else numbers.Real
    ok = isinstance(value, number) and not isinstance(value, bool)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open or high is None else "]"
        upper = "inf" if high is None else high
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'} in "
                         f"{left}{low}, {upper}{right}, got {value!r}.")


def check_bool(estimator, name):
    value = getattr(estimator, name)
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")


def _user_subset(data, rows):
    """The interactions of users ``rows`` of ``data`` (same catalogue)."""
    positions, indptr = data._gather(rows)
    return Interactions(data.user_ids[rows], data.item_ids, indptr, data.items[positions],
                        data.times[positions])


def check_choice(estimator, name, choices):
    value = getattr(estimator, name)
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")


class NeuralRecommender(BaseRecommender):
    """Base of the torch estimators.

    Subclasses implement ``_build(data, rng)`` returning ``(module, stages)`` for
    :func:`skcreate.training.train` (a module whose ``forward(batch)`` returns its named loss
    terms, and the training plan), and ``_score(data, rows)``. With ``early_stopping=True`` the
    fit data is split by :func:`~skcreate.model_selection.temporal_validation_split` at
    ``validation_quantile``; the model trains on the inner train part and is scored by NDCG@10
    on the validation users' last interactions after every validated epoch.

    Under torchrun (``distributed="auto"`` and ``WORLD_SIZE > 1``, or an initialised process
    group) the fit is data-parallel (see :mod:`skcreate.distributed`): every rank builds the
    same model, trains on its shards of the batches on its own device, scores its shard of the
    validation users, and ends with the same weights.
    """

    def _check_training_params(self):
        check_param(self, "learning_rate", float, 0, low_open=True)
        check_param(self, "batch_size", int, 1)
        check_param(self, "epochs", int, 1)
        check_param(self, "patience", int, 1)
        check_param(self, "validation_quantile", float, 0, 1, True, True)
        check_param(self, "weight_decay", float, 0)
        for name in ("early_stopping", "retrain_on_all", "verbose"):
            check_bool(self, name)
        check_choice(self, "on_interrupt", ("raise", "stop"))
        check_param(self, "checkpoint_every", int, 1)
        if self.checkpoint_path is not None:
            if not isinstance(self.checkpoint_path, (str, os.PathLike)):
                raise ValueError(f"checkpoint_path must be a file path or None, got "
                                 f"{self.checkpoint_path!r}.")
            folder = os.path.dirname(os.path.abspath(self.checkpoint_path))
            if not os.path.isdir(folder):
                raise ValueError(f"checkpoint_path={self.checkpoint_path!r}: the folder "
                                 f"{folder!r} does not exist.")
        check_choice(self, "distributed", ("auto", False))
        check_choice(self, "precision", ("fp32", "bf16"))

    def _check_params(self):
        self._check_training_params()
        self._check_model_params()
        resolve_device(self.device)

    def _check_model_params(self):
        """Validate model-specific parameters (subclasses)."""

    def _optimizer(self):
        return functools.partial(torch.optim.Adam, lr=self.learning_rate,
                                 weight_decay=self.weight_decay)

    def _checkpoint(self, data, distributed):
        """The run's Checkpoint (None without checkpoint_path), fingerprinted by parameters and
        data, so that a file is only resumed into the fit that wrote it. Each rank of a
        data-parallel fit keeps its own file: its dropout stream is its own."""
        if self.checkpoint_path is None:
            return None
        params = self.get_params(deep=False)
        if not isinstance(self.random_state, numbers.Integral):
            # an unseeded fit resumes with the seed its checkpoint recorded
            params["random_state"] = type(self.random_state).__name__
        digest = hashlib.sha256(repr((
            type(self).__qualname__, __version__, self.world_size_,
            sorted((k, repr(v)) for k, v in params.items() if k not in _RUN_PARAMS),
        )).encode())
        for array in (data.indptr, data.items, data.times):
            digest.update(np.ascontiguousarray(array).view(np.uint8))
        for ids in (data.user_ids, data.item_ids):
            digest.update(pd.util.hash_pandas_object(ids, index=False).to_numpy())
        path = os.fspath(self.checkpoint_path)
        if distributed:
            path = f"{path}.rank{dist.rank()}"
        return Checkpoint(path, self.checkpoint_every, digest.hexdigest())

    def _train(self, data, seed, distributed, validate=None, checkpoint=None, epochs=None):
        """Build the network for encoded ``data`` and train it; with ``epochs``, the validated
        stages stop after that many epochs in all (the retrain on all the data)."""
        self.train_user_ids_ = data.user_ids
        # fork_rng keeps the caller's global torch RNG untouched while seeding ours
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rng = np.random.default_rng(seed)
            module, stages = self._build(data, rng)
            if epochs is not None:
                stages = _truncate_validated(stages, epochs)
            self.module_ = module.to(self.device_)
            if distributed:
                # the ranks share the initial weights and the batch order, not dropout masks
                torch.manual_seed(int(np.random.SeedSequence([seed, dist.rank()])
                                      .generate_state(1)[0]))
            if checkpoint is not None:
                checkpoint.rngs, checkpoint.extra = [rng], {"seed": seed}
            return train(
                self.module_, stages, self._optimizer(), validate=validate,
                patience=self.patience if validate is not None else None,
                callbacks=self.callbacks or (), verbose=self.verbose,
                description=type(self).__name__, checkpoint=checkpoint,
                distributed=distributed, precision=self.precision)

    def _fit(self, data):
        self.device_, distributed = resolve_device(self.device), False
        if self.distributed == "auto":
            self.device_, distributed = dist.setup(self.device_)
        self.world_size_ = dist.world_size() if distributed else 1
        checkpoint = self._checkpoint(data, distributed)
        with contextlib.ExitStack() as stack:
            if distributed:
                stack.enter_context(dist.rank_timeouts())
            if checkpoint is not None:
                # before training: a second live fit on the file (a clone in a parallel
                # search) is refused rather than let the two overwrite each other's state
                stack.enter_context(checkpoint.lock())
            self._fit_checkpointed(data, distributed, checkpoint)

    def _fit_checkpointed(self, data, distributed, checkpoint):
        if checkpoint is not None and checkpoint.exists():
            seed = int(checkpoint.load()["seed"])
        else:
            seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        train_data, validate = data, None
        if self.early_stopping:
            train_data, validation = self._validation_split(data)
            validate = functools.partial(self._validation_score, *validation)
            if distributed:
                rows = dist.shard_rows(validation[0].n_users)
                validate = functools.partial(self._reduced_validation_score,
                                             _user_subset(validation[0], rows),
                                             validation[1][rows])
        result = self._train(train_data, seed, distributed, validate, checkpoint)
        retrain = self.early_stopping and self.retrain_on_all and not result.interrupted
        if retrain:
            selection = result
            result = self._train(data, seed, distributed, epochs=max(selection.best_epoch, 1))
            result.validation_scores = selection.validation_scores
            result.best_epoch = selection.best_epoch
            result.resumed_epochs = selection.resumed_epochs
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
        if result.interrupted and self.on_interrupt == "raise":
            # re-raising stops whatever called fit (a search, a script); BaseRecommender.fit
            # then leaves the estimator unfitted, as after any failed fit
            raise KeyboardInterrupt(f"{type(self).__name__}.fit interrupted after "
                                    f"{len(self.loss_curve_)} epoch(s); the estimator is left "
                                    "unfitted (on_interrupt='stop' keeps the weights so far).")

    def _validation_split(self, data):
        """Inner train data and the validation (history, target codes) of encoded ``data``."""
        frame = pd.DataFrame({
            "user_id": data.user_ids.take(data.row_users),
            "item_id": data.item_ids.take(data.items),
            "timestamp": data.times,
        })
        try:
            train, validation = temporal_validation_split(frame, self.validation_quantile)
        except ValueError as exc:
            raise ValueError(f"early_stopping needs a validation split at validation_quantile="
                             f"{self.validation_quantile}: {exc}") from None
        columns = ("user_id", "item_id", "timestamp")
        train_data, _ = Interactions.from_frame(train, *columns, item_ids=data.item_ids)
        history, targets = split_history_target(validation)
        history_data, _ = Interactions.from_frame(history, *columns, item_ids=data.item_ids)
        target_items = targets.set_index("user_id")["item_id"].reindex(history_data.user_ids)
        return train_data, (history_data, data.item_ids.get_indexer(target_items))

    def _validation_score(self, history, targets, k=10):
        """NDCG@k of next-item prediction for encoded ``history`` and target item codes."""
        codes, values = self._top_k(history, k)
        found = np.isfinite(values)
        users = np.repeat(np.arange(history.n_users), k)
        recommendations = pd.DataFrame({"user_id": users[found.ravel()],
                                        "item_id": codes[found],
                                        "rank": np.tile(np.arange(1, k + 1), history.n_users)
                                        [found.ravel()]})
        relevant = pd.DataFrame({"user_id": np.arange(history.n_users), "item_id": targets})
        return ndcg_at_k(recommendations, relevant, k)

    def _validation_sums(self, history, targets, k=10):
        """Summed NDCG@k over the users of ``history`` and their count (one rank's shard)."""
        if history.n_users == 0:
            return 0.0, 0
        return self._validation_score(history, targets, k) * history.n_users, history.n_users

    def _reduced_validation_score(self, history, targets, k=10):
        """NDCG@k over every rank's shard of the validation users, the same on every rank."""
        sums = torch.tensor(self._validation_sums(history, targets, k), dtype=torch.float64,
                            device=self.device_)
        total, count = dist.all_reduce_sum(sums).tolist()
        return total / count

    def _restore(self, state_dict):
        # the network is rebuilt exactly as at fit (same data and parameters), then given the
        # saved weights: a model file holds tensors, never code
        train_data = self.interactions_
        if self.early_stopping and not self.retrain_on_all:
            train_data, _ = self._validation_split(self.interactions_)
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


def _truncate_validated(stages, epochs):
    """The plan with its validated stages cut to ``epochs`` epochs in all (warm-ups kept)."""
    plan = []
    for stage in stages:
        if stage.validate:
            stage = dataclasses.replace(stage, epochs=min(stage.epochs, epochs))
            epochs -= stage.epochs
        plan.append(stage)
    return plan


def copy_to_cpu(module):
    """The module itself if already on CPU, else a CPU copy (training device untouched)."""
    parameter = next(module.parameters(), None)
    if parameter is None or parameter.device.type == "cpu":
        return module
    return copy.deepcopy(module).cpu()
