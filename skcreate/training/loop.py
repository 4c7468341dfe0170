"""The training loop shared by every neural estimator: a plan of stages, one optimiser.

A model is an ``nn.Module`` whose ``forward(batch)`` returns its named loss terms for one step
(see :mod:`skcreate.nn`), so one wrapper (DDP, autocast, ``torch.compile``) applies to every
model. A training plan is a list of :class:`Stage`: which batches feed the model for how many
epochs, how the terms are weighted, and whether the epochs are validated. CREATE's graph
warm-up is its first stage.
"""

import copy
import dataclasses
import functools
import inspect
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
# plain tqdm: tqdm.auto warns in notebooks without ipywidgets even when the bar is off
from tqdm import tqdm

from . import distributed as dist
from .batches import ShardedBatches, to_device
from ..nn.optim import clip_grad_norm

__all__ = ["Stage", "EpochRecord", "Callback", "TrainingResult", "train"]


@dataclass
class Stage:
    """One phase of a training plan.

    Attributes
    ----------
    name : str
        Label of the stage's epochs (``TrainingResult.epoch_stages``).
    epochs : int
        Epochs to run.
    batches : callable
        ``batches(epoch)`` yields the batches of the stage's ``epoch``-th epoch (0-based),
        which the step module reads: the typed batches of :mod:`skcreate.training.batches`, or
        tensors or dicts of them for a module of your own.
    weights : dict of str to float
        Weight of each loss term in the optimised total; a term not listed weighs 1.
    validate : bool
        Whether the epochs are the model's own: validated when a validation function is given
        (early stopping may stop there and keep their weights) and counted in
        ``best_epoch``/``n_epochs``. A warm-up stage sets False: its epochs record NaN.
    """

    name: str
    epochs: int
    batches: Callable
    weights: dict = field(default_factory=dict)
    validate: bool = True


@dataclass
class EpochRecord:
    """What :class:`Callback` hooks see at the end of an epoch.

    Attributes
    ----------
    epoch : int
        Epochs run so far, all stages (1-based).
    stage : str
    elapsed : float
        Training seconds of this epoch.
    loss : float
        Mean weighted total loss.
    terms : dict of str to float
        Mean of each unweighted term.
    validation_score : float or None
        Validation score, None when not validated.
    """

    epoch: int
    stage: str
    elapsed: float
    loss: float
    terms: dict
    validation_score: float = None


class Callback:
    """Hooks into :func:`train`; override what you need.

    A plain callable passed as a callback is called like implicit's
    ``callback(epoch, elapsed, loss)`` at the end of every epoch.
    """

    def on_step_end(self, step, terms):
        """After every optimiser step; ``terms`` are detached device tensors (reading them
        with ``float`` synchronises with the device)."""

    def on_epoch_end(self, record):
        """After every epoch (and its validation); return True to stop training."""


class _EpochCallable(Callback):
    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, record):
        return self.function(record.epoch, record.elapsed, record.loss)


@dataclass
class TrainingResult:
    """What a training run learned about itself.

    Attributes
    ----------
    loss_curve : list of float
        Mean weighted total loss per epoch, all stages.
    loss_terms : dict of str to list of float
        Mean of each unweighted loss term per epoch (an epoch where a term is off records 0).
    validation_scores : list of float
        Validation score per epoch (NaN in stages that are not validated; empty without
        validation).
    epoch_seconds : list of float
        Wall-clock seconds of each epoch's training (validation excluded).
    epoch_stages : list of str
        Stage name of each epoch.
    best_epoch : int
        Epochs of the validated stages behind the kept weights.
    n_epochs : int
        Epochs of the validated stages run.
    interrupted : bool
        Whether Ctrl-C stopped training.
    resumed_epochs : int
        Epochs restored from a checkpoint rather than run (0 for a fresh run).
    initial_loss : float or None
        Weighted total loss of the first step, at the initial weights: the scale the
        exploding-loss rule compares epochs with (see :func:`train`).
    optimizer_state : dict or None
        The optimiser's ``state_dict`` at the end of training, on CPU (the last epoch's, also
        when the best epoch's weights are restored), for :func:`train`'s
        ``optimizer_state`` of a later run.
    """

    loss_curve: list = field(default_factory=list)
    loss_terms: dict = field(default_factory=dict)
    validation_scores: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    epoch_stages: list = field(default_factory=list)
    best_epoch: int = 0
    n_epochs: int = 0
    interrupted: bool = False
    resumed_epochs: int = 0
    initial_loss: float = None
    optimizer_state: dict = None


# an epoch whose mean loss is this many times the loss at the initial weights has exploded:
# a sane fit lowers its loss, or raises it by a small factor when a stage adds terms
# (CREATE's joint stage after its warm-up: about 30x), never by orders of magnitude
EXPLODING_FACTOR = 1e6


def _loss_bound(initial_loss):
    """Largest mean epoch loss (in magnitude) that is not an explosion."""
    # floored at 1: a loss that starts near 0 may grow a little without having exploded
    return EXPLODING_FACTOR * max(abs(initial_loss), 1.0)


def _diverged(stage, epoch, loss, terms, optimiser, bound):
    """Raise the FloatingPointError of a non-finite or exploded epoch ``loss``."""
    def bad_value(value):
        return not math.isfinite(value) or abs(value) > bound

    bad = [name for name, value in terms.items() if bad_value(value)] or ["total"]
    value = terms.get(bad[0], loss)
    became = (f"became {value}" if not math.isfinite(value) else
              f"exploded to {value:.3g} (over {EXPLODING_FACTOR:g} times its initial scale)")
    rate = optimiser.defaults.get("lr")
    hint = f" (now {rate:g})" if isinstance(rate, float) else ""
    raise FloatingPointError(
        f"The {' and '.join(bad)} loss {became} in epoch {epoch} (stage {stage.name!r}); "
        f"training stopped with the weights of the last good epoch. "
        f"Try a lower learning rate{hint}.")


_AUTOCAST = {"fp32": None, "bf16": torch.bfloat16}


def _device_of(module):
    parameter = next(module.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


class _Run:
    """Bookkeeping of one :func:`train` call: curves, best weights, progress bar."""

    def __init__(self, module, validate, patience, callbacks, bar):
        self.module, self.validate, self.patience = module, validate, patience
        self.callbacks, self.bar = callbacks, bar
        self.result = TrainingResult()
        self.best_score, self.best_state = -float("inf"), None

    def save(self, checkpoint, optimiser, sources, step, position):
        """Write the run's state; ``position`` is (stage index, epochs done in it)."""
        checkpoint.save({
            **checkpoint.capture(self.module, optimiser, sources),
            "result": dataclasses.asdict(self.result),
            "best_score": self.best_score, "best_state": self.best_state,
            "step": step, "position": position})

    def resume(self, checkpoint, optimiser, sources):
        """Restore the state :meth:`save` wrote; returns its (step, position)."""
        state = checkpoint.load()
        checkpoint.restore(state, self.module, optimiser, sources)
        self.result = TrainingResult(**state["result"])
        self.best_score, self.best_state = state["best_score"], state["best_state"]
        self.result.resumed_epochs = len(self.result.loss_curve)
        self.bar.update(self.result.resumed_epochs)
        return state["step"], tuple(state["position"])

    def record(self, stage, elapsed, loss, terms):
        """Curves and validation of a finished epoch; returns True to stop."""
        result = self.result
        done = len(result.loss_curve)
        result.loss_curve.append(loss)
        result.epoch_seconds.append(elapsed)
        result.epoch_stages.append(stage.name)
        for name in terms.keys() | result.loss_terms.keys():
            result.loss_terms.setdefault(name, [0.0] * done).append(terms.get(name, 0.0))
        postfix = {"stage": stage.name, "loss": f"{loss:.4f}"}
        score, stop = None, False
        if stage.validate:
            result.n_epochs += 1
        if self.validate is None:
            if stage.validate:
                result.best_epoch = result.n_epochs
        elif not stage.validate:
            result.validation_scores.append(float("nan"))
        else:
            self.module.eval()
            score = float(self.validate())
            result.validation_scores.append(score)
            postfix["val_ndcg@10"] = f"{score:.4f}"
            if score > self.best_score:
                self.best_score, result.best_epoch = score, result.n_epochs
                self.best_state = copy.deepcopy(self.module.state_dict())
            elif self.patience is not None and \
                    result.n_epochs - result.best_epoch >= self.patience:
                stop = True
        self.bar.set_postfix(postfix)
        self.bar.update()
        record = EpochRecord(done + 1, stage.name, elapsed, loss, terms, score)
        for callback in self.callbacks:
            stop = bool(callback.on_epoch_end(record)) or stop
        return stop


def _data_parallel(module, stages, device):
    """The DDP-wrapped step and the stages on this rank's shards of their batches."""
    # CREATE's warm-up gives the transformer no gradient: DDP must look for parameters a step
    # leaves unused, and then keeps the gradient of one unused on every rank None, so that
    # Adam skips it as in one process. Each step's graph is small next to its matmuls.
    ddp = torch.nn.parallel.DistributedDataParallel
    # buffers are constants built from the same data on every rank: no sync per step
    # (newer torch renames the option)
    no_sync = ("forward_sync_buffers" if "forward_sync_buffers" in
               inspect.signature(ddp).parameters else "broadcast_buffers")
    step = ddp(module, device_ids=[device.index] if device.type == "cuda" else None,
               find_unused_parameters=True, **{no_sync: False})
    stages = [dataclasses.replace(
        stage, batches=ShardedBatches(stage.batches, dist.rank(), dist.world_size()))
        for stage in stages]
    return step, stages


def train(module, stages, optimizer=None, clip_norm=1.0, validate=None, patience=None,
          callbacks=(), verbose=False, description="training", device=None, checkpoint=None,
          distributed=False, precision="fp32", optimizer_state=None):
    """Train ``module`` through ``stages`` with one optimiser.

    Parameters
    ----------
    module : torch.nn.Module
        Holds every trainable parameter; ``module(batch)`` returns a dict of named scalar loss
        terms. Parameters that a step's terms do not reach get no gradient, and the
        optimiser leaves them unchanged (a warm-up stage trains one branch only).
    stages : list of Stage
        The training plan, run in order.
    optimizer : callable, optional
        ``optimizer(parameters)`` returns a ``torch.optim.Optimizer``; default Adam at
        learning rate 1e-3. One optimiser serves every stage, so its state carries over.
    clip_norm : float or None
        Max global gradient norm.
    validate : callable, optional
        Returns a validation score (higher is better) for the current weights; called after
        every epoch of a validated stage, with the module in eval mode.
    patience : int, optional
        With ``validate``, stop after this many validated epochs without improvement; the best
        weights are restored in any case.
    callbacks : sequence of Callback or callable
        Hooks per step and per epoch; a callable is called as ``callback(epoch, elapsed,
        loss)`` after every epoch.
    verbose : bool
        Show a progress bar with stage, loss and validation NDCG@10.
    description : str
        Progress bar label.
    device : torch.device, optional
        Where batches go; default the module's.
    checkpoint : skcreate.training.checkpoint.Checkpoint, optional
        Save the training state every ``checkpoint.every`` epochs; when its file exists, resume
        after the epoch it holds. A finished run removes the file; an interrupted or diverged
        one keeps it. Batch sources that carry state across epochs expose
        ``state_dict()``/``load_state_dict()``.
    distributed : bool
        Train data-parallel in the initialised process group (see
        :mod:`skcreate.training.distributed`): each rank trains on its shard of every batch
        (:class:`~skcreate.training.batches.ShardedBatches`) through DistributedDataParallel, the
        curves are reduced over ranks, ``validate`` must return the same score on every rank,
        rank 0's stop decision holds everywhere and only rank 0 shows the progress bar.
        Every rank ends with the same weights.
    precision : {"fp32", "bf16"}
        ``"bf16"`` runs the forward pass (the loss terms) under bfloat16 autocast; weights,
        gradients and the optimiser stay float32.
    optimizer_state : dict, optional
        A ``state_dict`` of the same optimiser class over parameters of the same shapes (a
        former run's ``TrainingResult.optimizer_state``): training continues with its
        moments and step counts, under this run's learning rate and penalties.

    Returns
    -------
    TrainingResult

    Raises
    ------
    FloatingPointError
        When an epoch's loss diverges: it is not finite, or it has exploded, its mean over
        the epoch exceeding ``EXPLODING_FACTOR`` (1e6) times the loss of the first step at the
        initial weights (at least 1) in magnitude. Both are what a too high learning rate
        does; the rule is the same for every model. The error names the term and the epoch,
        and the module keeps the weights of the epoch before.
    """
    if optimizer is None:
        optimizer = functools.partial(torch.optim.Adam, lr=1e-3)
    optimiser = optimizer(module.parameters())
    if optimizer_state is not None:
        # the moments carry over; the step size and penalties are this run's
        settings = [{k: v for k, v in group.items() if k != "params"}
                    for group in optimiser.param_groups]
        optimiser.load_state_dict(optimizer_state)
        for group, own in zip(optimiser.param_groups, settings):
            group.update(own)
    device = _device_of(module) if device is None else torch.device(device)
    autocast = _AUTOCAST[precision]
    distributed = distributed and dist.is_distributed()
    # the sources' own state is what a checkpoint holds, not their shards'
    sources = [stage.batches for stage in stages]
    step_module = module
    if distributed:
        step_module, stages = _data_parallel(module, stages, device)
    callbacks = [c if isinstance(c, Callback) else _EpochCallable(c) for c in callbacks]
    bar = tqdm(total=sum(stage.epochs for stage in stages), desc=description,
               disable=not verbose or not dist.is_main_process(), leave=False)
    run = _Run(module, validate, patience, callbacks, bar)
    step, position = 0, (0, 0)
    if checkpoint is not None and checkpoint.exists():
        step, position = run.resume(checkpoint, optimiser, sources)
    finished = False
    try:
        for index, stage in enumerate(stages):
            if index < position[0]:
                continue
            # the bar says which stage the epochs belong to (a warm-up is not the model's fit)
            bar.set_description(f"{description} [{stage.name}]" if len(stages) > 1
                                else description)
            stop = False
            for epoch in range(position[1] if index == position[0] else 0, stage.epochs):
                # the last finite weights, restored if this epoch diverges
                last_good = copy.deepcopy(module.state_dict())
                step_module.train()
                started = time.perf_counter()
                total = torch.zeros((), dtype=torch.float64, device=device)
                sums, n_batches = {}, 0
                for batch in stage.batches(epoch):
                    with torch.autocast(device.type, dtype=autocast,
                                        enabled=autocast is not None):
                        terms = step_module(to_device(batch, device))
                        if hasattr(batch, "weigh"):
                            # a shard's terms weighed as its share of the global batch
                            terms = batch.weigh(terms)
                        loss = sum(stage.weights.get(name, 1.0) * value
                                   for name, value in terms.items())
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    if clip_norm:
                        clip_grad_norm(module.parameters(), clip_norm)
                    optimiser.step()
                    if run.result.initial_loss is None:
                        # the one read of a step's loss in a run: the scale of the
                        # exploding-loss rule, the same on every rank
                        first = loss.detach().double().reshape(1)
                        if distributed:
                            first = dist.all_reduce_sum(first) / dist.world_size()
                        run.result.initial_loss = float(first)
                    total += loss.detach()
                    terms = {name: value.detach() for name, value in terms.items()}
                    for name, value in terms.items():
                        sums[name] = sums.get(name, 0.0) + value.double()
                    n_batches += 1
                    step += 1
                    for callback in callbacks:
                        callback.on_step_end(step, terms)
                # one read per epoch: the steps never wait for the device
                values = torch.stack([total, *sums.values()])
                if distributed:
                    # each rank's terms are rescaled shares: their mean is the global batch's
                    values = dist.all_reduce_sum(values) / dist.world_size()
                values = values.tolist()
                elapsed = time.perf_counter() - started
                n_batches = max(n_batches, 1)
                terms = {name: value / n_batches for name, value in zip(sums, values[1:])}
                loss = values[0] / n_batches
                bound = _loss_bound(run.result.initial_loss or 0.0)
                if not all(map(math.isfinite, values)) or abs(loss) > bound:
                    module.load_state_dict(last_good)
                    _diverged(stage, len(run.result.loss_curve) + 1, loss, terms, optimiser,
                              bound)
                stop = run.record(stage, elapsed, loss, terms)
                if distributed:
                    stop = dist.broadcast_flag(stop, device)
                if stop:
                    break
                if checkpoint is not None and checkpoint.due(len(run.result.loss_curve)):
                    run.save(checkpoint, optimiser, sources, step, (index, epoch + 1))
            if stop:
                break
        finished = True
    except KeyboardInterrupt:
        run.result.interrupted = True
        done = len(run.result.loss_curve)
        kept = ("the weights are the initial ones" if done == 0 else
                "keeping the best weights so far" if run.best_state is not None else
                "keeping the last epoch's weights")
        if dist.is_main_process():
            warnings.warn(f"{description} interrupted after {done} epoch(s); {kept}.",
                          UserWarning, stacklevel=2)
    finally:
        bar.close()
    if finished and checkpoint is not None:
        checkpoint.remove()
    if run.best_state is not None:
        module.load_state_dict(run.best_state)
    module.eval()
    run.result.optimizer_state = _to_cpu(optimiser.state_dict())
    return run.result


def _to_cpu(value):
    """A copy of a nested state (dicts, lists, tensors) with its tensors on CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value
