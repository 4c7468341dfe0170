"""The Trainer: how a neural estimator's fit runs (device, early stopping, checkpoints...).

An estimator builds its network and training plan (:class:`~skcreate.training.Stage`) and
serves; its ``trainer`` runs the fit: device and data parallelism, the early-stopping split and
validation, the retrain on all the data, checkpoints, precision, callbacks, progress and Ctrl-C.
"""

import contextlib
import dataclasses
import functools
import hashlib
import numbers
import os

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions

from . import distributed as dist
from .._version import __version__
from .averaging import TailAverage
from .checkpoint import Checkpoint
from .growth import grow_into, grow_optimizer_state, stretch_new_item_steps
from ..data.interactions import Interactions
from ..data.metrics import ndcg_at_k
from ..data.model_selection import split_history_target, temporal_validation_split
from .loop import train

__all__ = ["Trainer", "resolve_device"]

# options that change how a fit is watched or saved, not what it computes
_RUN_OPTIONS = ("verbose", "callbacks", "on_interrupt", "checkpoint_path", "checkpoint_every")


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


class Trainer(BaseEstimator):
    """How a neural estimator's fit runs: ``SASRecRecommender(trainer=Trainer(...))``.

    Every neural estimator takes one as ``trainer`` (None: ``Trainer()``); its options are
    reached as ``trainer__<name>`` in ``set_params`` and grids. ``early_stopping``,
    ``patience``, ``validation_quantile`` and ``retrain_on_all`` change what a fit learns;
    the others only where and how it runs (``device``, ``distributed`` and ``precision``
    within float tolerance).

    Parameters
    ----------
    device : {"cpu", "cuda", "cuda:N", "auto"}, default="cpu"
        Where to train and infer.
    early_stopping : bool, default=False
        Hold out the last part of the fit data in time (``validation_quantile``), stop when
        validation NDCG@10 has not improved for ``patience`` epochs and keep the best weights.
    patience : int, default=5
        Epochs without improvement before stopping.
    validation_quantile : float, default=0.9
        Time quantile of the internal validation split.
    retrain_on_all : bool, default=False
        With ``early_stopping``, then train again from scratch (same seed) on all the fit data
        for the ``best_epoch_`` epochs the validation run chose, as the benchmark protocol
        does: the final model also learns from the held-out last part, which holds the most
        recent interactions. ``validation_scores_`` and ``best_epoch_`` come from the
        validation run, the other curves from the retrain. A ``checkpoint_path`` covers the
        validation run.
    checkpoint_path : str or os.PathLike, default=None
        A file to save the whole training state in every ``checkpoint_every`` epochs (written
        to a temporary name, then renamed, so a crash never leaves half a file). When ``fit``
        finds the file, it resumes after the epoch it holds and ends with the same weights as
        an uninterrupted fit; a file from a fit with other parameters or data is refused. A
        finished fit deletes the file; an interrupted, killed or diverged one leaves it.
    checkpoint_every : int, default=1
        Epochs between checkpoint writes.
    callbacks : list of skcreate.training.Callback or callable, default=None
        Training hooks (see :func:`skcreate.training.train`); a callable is called as
        ``callback(epoch, elapsed, loss)`` after every epoch.
    on_interrupt : {"raise", "stop"}, default="raise"
        What Ctrl-C during ``fit`` does. ``"stop"`` stops training and returns from ``fit``
        with a warning; the estimator keeps the best weights so far (the last epoch's without
        validation) and its curves, with ``interrupted_=True``. ``"raise"`` re-raises
        ``KeyboardInterrupt``, so that a surrounding ``GridSearchCV`` or script stops too, and
        leaves the estimator unfitted like any failed ``fit`` (a checkpoint, if any, is kept
        to resume from).
    distributed : {"auto", False}, default="auto"
        ``"auto"`` trains data-parallel when launched by torchrun (``WORLD_SIZE > 1``) or in
        an initialised process group, one device per process; ``False`` trains in each
        process alone. See ``docs/distributed.md``.
    precision : {"fp32", "bf16"}, default="fp32"
        Arithmetic of the training forward pass: ``"bf16"`` runs it under bfloat16 autocast
        (weights, optimiser and backward stay float32); faster on GPUs with bf16 units.
    verbose : bool, default=False
        Show a progress bar with the loss (and validation NDCG@10).

    Examples
    --------
    >>> from skcreate import SASRecRecommender
    >>> from skcreate.training import Trainer
    >>> model = SASRecRecommender(trainer=Trainer(early_stopping=True, patience=2))
    >>> model.set_params(trainer__patience=3).trainer
    Trainer(early_stopping=True, patience=3)
    """

    _parameter_constraints = {
        "early_stopping": ["boolean"],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "validation_quantile": [Interval(numbers.Real, 0, 1, closed="neither")],
        "retrain_on_all": ["boolean"],
        "checkpoint_path": [None, str, os.PathLike],
        "checkpoint_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "callbacks": [None, list, tuple],
        "on_interrupt": [StrOptions({"raise", "stop"})],
        "distributed": [StrOptions({"auto"}), Options(bool, {False})],
        "precision": [StrOptions({"fp32", "bf16"})],
        "verbose": ["boolean"],
    }

    def __init__(self, device="cpu", early_stopping=False, patience=5, validation_quantile=0.9,
                 retrain_on_all=False, checkpoint_path=None, checkpoint_every=1, callbacks=None,
                 on_interrupt="raise", distributed="auto", precision="fp32", verbose=False):
        self.device = device
        self.early_stopping = early_stopping
        self.patience = patience
        self.validation_quantile = validation_quantile
        self.retrain_on_all = retrain_on_all
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.callbacks = callbacks
        self.on_interrupt = on_interrupt
        self.distributed = distributed
        self.precision = precision
        self.verbose = verbose

    def _validate_params(self):
        """Validate the options (a ValueError naming the first bad one); runs before a fit."""
        super()._validate_params()
        if self.checkpoint_path is not None:
            folder = os.path.dirname(os.path.abspath(self.checkpoint_path))
            if not os.path.isdir(folder):
                raise ValueError(f"checkpoint_path={self.checkpoint_path!r}: the folder "
                                 f"{folder!r} does not exist.")
        resolve_device(self.device)

    def fit(self, estimator, data):
        """Train ``estimator``'s network on encoded ``data``; returns the
        :class:`~skcreate.training.TrainingResult`.

        The estimator gives ``_build(data, rng) -> (module, stages)``, ``_optimizer(module)``,
        ``_top_k(history, k)`` (validation) and ``random_state``; the trainer sets its
        ``module_``, ``device_``, ``world_size_`` and ``train_user_ids_``.
        """
        estimator.device_, distributed = resolve_device(self.device), False
        if self.distributed == "auto":
            estimator.device_, distributed = dist.setup(estimator.device_)
        estimator.world_size_ = dist.world_size() if distributed else 1
        checkpoint = self._checkpoint(estimator, data, distributed)
        with contextlib.ExitStack() as stack:
            if distributed:
                stack.enter_context(dist.rank_timeouts())
            if checkpoint is not None:
                # before training: a second live fit on the file (a clone in a parallel
                # search) is refused rather than let the two overwrite each other's state
                stack.enter_context(checkpoint.lock())
            return self._fit_checkpointed(estimator, data, distributed, checkpoint)

    def _checkpoint(self, estimator, data, distributed):
        """The run's Checkpoint (None without checkpoint_path), fingerprinted by parameters and
        data, so that a file is only resumed into the fit that wrote it. Each rank of a
        data-parallel fit keeps its own file: its dropout stream is its own."""
        if self.checkpoint_path is None:
            return None
        params = {name: value for name, value in estimator.get_params(deep=False).items()
                  if name != "trainer"}
        params.update((f"trainer__{name}", value) for name, value in
                      self.get_params(deep=False).items() if name not in _RUN_OPTIONS)
        if not isinstance(estimator.random_state, numbers.Integral):
            # an unseeded fit resumes with the seed its checkpoint recorded
            params["random_state"] = type(estimator.random_state).__name__
        digest = hashlib.sha256(repr((
            type(estimator).__qualname__, __version__, estimator.world_size_,
            sorted((k, repr(v)) for k, v in params.items()),
        )).encode())
        for array in (data.indptr, data.items, data.times):
            digest.update(np.ascontiguousarray(array).view(np.uint8))
        for ids in (data.user_ids, data.item_ids):
            digest.update(pd.util.hash_pandas_object(ids, index=False).to_numpy())
        path = os.fspath(self.checkpoint_path)
        if distributed:
            path = f"{path}.rank{dist.rank()}"
        return Checkpoint(path, self.checkpoint_every, digest.hexdigest())

    def _fit_checkpointed(self, estimator, data, distributed, checkpoint):
        if checkpoint is not None and checkpoint.exists():
            seed = int(checkpoint.load()["seed"])
        else:
            seed = int(check_random_state(estimator.random_state).randint(2**31 - 1))
        train_data, validate = data, None
        if self.early_stopping:
            train_data, validation = self.validation_split(data)
            validate = functools.partial(_validation_score, estimator, *validation)
            if distributed:
                rows = dist.shard_rows(validation[0].n_users)
                validate = functools.partial(_reduced_validation_score, estimator,
                                             _user_subset(validation[0], rows),
                                             validation[1][rows])
        result = self._train(estimator, train_data, seed, distributed, validate, checkpoint)
        if self.early_stopping and self.retrain_on_all and not result.interrupted:
            selection = result
            result = self._train(estimator, data, seed, distributed,
                                 epochs=max(selection.best_epoch, 1))
            result.validation_scores = selection.validation_scores
            result.best_epoch = selection.best_epoch
            result.resumed_epochs = selection.resumed_epochs
        return result

    def _train(self, estimator, data, seed, distributed, validate=None, checkpoint=None,
               epochs=None):
        """Build the network for encoded ``data`` and train it; with ``epochs``, the validated
        stages stop after that many epochs in all (the retrain on all the data)."""
        estimator.train_user_ids_ = data.user_ids
        # fork_rng keeps the caller's global torch RNG untouched while seeding ours
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rng = np.random.default_rng(seed)
            module, stages = estimator._build(data, rng)
            if epochs is not None:
                stages = _truncate_validated(stages, epochs)
            estimator.module_ = module.to(estimator.device_)
            if distributed:
                # the ranks share the initial weights and the batch order, not dropout masks
                torch.manual_seed(int(np.random.SeedSequence([seed, dist.rank()])
                                      .generate_state(1)[0]))
            if checkpoint is not None:
                checkpoint.rngs, checkpoint.extra = [rng], {"seed": seed}
            return train(
                estimator.module_, stages, estimator._optimizer(estimator.module_),
                validate=validate,
                patience=self.patience if validate is not None else None,
                callbacks=self.callbacks or (), verbose=self.verbose,
                description=type(estimator).__name__, checkpoint=checkpoint,
                distributed=distributed, precision=self.precision)

    def partial_fit(self, estimator, data, touched, epochs, warmup_epochs=0, fold_in=False,
                    new_item_step=1.0, average_epochs=1):
        """Continue training ``estimator``'s fitted network on grown ``data``; returns the
        :class:`~skcreate.training.TrainingResult` of the update.

        The network is built for ``data`` (the fitted interactions and the new ones; its
        graph from all of them), given the fitted weights and optimiser state
        (:mod:`skcreate.training.growth`), and trained on the histories of the users
        ``touched`` by new events: ``epochs`` of each validated stage, ``warmup_epochs`` of
        each other one (CREATE's graph warm-up). With ``fold_in`` the new items' rows start
        from the fitted network (the estimator's ``_fold_in_items``), and every step moves
        them ``new_item_step`` times as far as the optimiser does
        (:func:`~skcreate.training.growth.stretch_new_item_steps`). The weights it ends with
        are the mean of those at the ends of the last ``average_epochs`` epochs of each
        validated stage (:class:`~skcreate.training.averaging.TailAverage`). Early stopping,
        checkpoints and data parallelism are fit's: an update runs on this process's device,
        without them.
        """
        # where the trainer says, as in fit (a loaded model's device_ is where it was loaded)
        estimator.device_ = resolve_device(self.device)
        seed = int(check_random_state(estimator.random_state).randint(2**31 - 1))
        user_rows = estimator.train_user_ids_.get_indexer(data.user_ids)
        fitted = estimator.module_
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rng = np.random.default_rng(seed)
            module, _ = estimator._build(data, rng)
            _, stages = estimator._build(_only_users(data, touched), rng)
            stages = estimator._update_stages(module, stages)
            stages = [dataclasses.replace(stage, epochs=epochs if stage.validate
                                          else warmup_epochs) for stage in stages]
            maps = grow_into(module, fitted, user_rows)
            state = getattr(estimator, "optimizer_state_", None)
            if state is not None:
                state = grow_optimizer_state(state, module, maps)
            module = module.to(estimator.device_)
            if fold_in:
                estimator._fold_in_items(module, data, touched, estimator.n_items_)
            optimizer = stretch_new_item_steps(estimator._optimizer(module), module,
                                               estimator.n_items_, new_item_step)
            averages = [TailAverage(module, stage.name, stage.epochs, average_epochs)
                        for stage in stages if stage.validate and average_epochs > 1]
            result = train(module, stages, optimizer,
                           callbacks=[*averages, *(self.callbacks or ())],
                           verbose=self.verbose, description=type(estimator).__name__,
                           precision=self.precision, optimizer_state=state)
            for average in averages:
                average.apply()
        estimator.module_ = module
        estimator.train_user_ids_ = data.user_ids
        return result

    def validation_split(self, data):
        """Inner train data and the validation (history, target codes) of encoded ``data``."""
        frame = pd.DataFrame({
            "user_id": data.user_ids.take(data.row_users),
            "item_id": data.item_ids.take(data.items),
            "timestamp": data.times,
        })
        try:
            train_frame, validation = temporal_validation_split(frame, self.validation_quantile)
        except ValueError as exc:
            raise ValueError(f"early_stopping needs a validation split at validation_quantile="
                             f"{self.validation_quantile}: {exc}") from None
        columns = ("user_id", "item_id", "timestamp")
        train_data, _ = Interactions.from_frame(train_frame, *columns, item_ids=data.item_ids)
        history, targets = split_history_target(validation)
        history_data, _ = Interactions.from_frame(history, *columns, item_ids=data.item_ids)
        target_items = targets.set_index("user_id")["item_id"].reindex(history_data.user_ids)
        return train_data, (history_data, data.item_ids.get_indexer(target_items))


def _validation_score(estimator, history, targets, k=10):
    """NDCG@k of next-item prediction for encoded ``history`` and target item codes."""
    codes, values = estimator._top_k(history, k)
    found = np.isfinite(values)
    users = np.repeat(np.arange(history.n_users), k)
    recommendations = pd.DataFrame({"user_id": users[found.ravel()],
                                    "item_id": codes[found],
                                    "rank": np.tile(np.arange(1, k + 1), history.n_users)
                                    [found.ravel()]})
    relevant = pd.DataFrame({"user_id": np.arange(history.n_users), "item_id": targets})
    return ndcg_at_k(recommendations, relevant, k)


def _validation_sums(estimator, history, targets, k=10):
    """Summed NDCG@k over the users of ``history`` and their count (one rank's shard)."""
    if history.n_users == 0:
        return 0.0, 0
    return _validation_score(estimator, history, targets, k) * history.n_users, history.n_users


def _reduced_validation_score(estimator, history, targets, k=10):
    """NDCG@k over every rank's shard of the validation users, the same on every rank."""
    sums = torch.tensor(_validation_sums(estimator, history, targets, k), dtype=torch.float64,
                        device=estimator.device_)
    total, count = dist.all_reduce_sum(sums).tolist()
    return total / count


def _user_subset(data, rows):
    """The interactions of users ``rows`` of ``data`` (same catalogue)."""
    positions, indptr = data._gather(rows)
    return Interactions(data.user_ids[rows], data.item_ids, indptr, data.items[positions],
                        data.times[positions])


def _only_users(data, rows):
    """``data`` with the events of users ``rows`` (sorted) only; codes unchanged."""
    positions, _ = data._gather(rows)
    lengths = np.zeros(data.n_users, dtype=np.int64)
    lengths[rows] = data.lengths[rows]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Interactions(data.user_ids, data.item_ids, indptr, data.items[positions],
                        data.times[positions])


def _truncate_validated(stages, epochs):
    """The plan with its validated stages cut to ``epochs`` epochs in all (warm-ups kept)."""
    plan = []
    for stage in stages:
        if stage.validate:
            stage = dataclasses.replace(stage, epochs=min(stage.epochs, epochs))
            epochs -= stage.epochs
        plan.append(stage)
    return plan
