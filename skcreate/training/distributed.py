"""Data-parallel training on ``torch.distributed``: process group, ranks, shards, collectives.

Under ``torchrun`` (``WORLD_SIZE > 1`` in the environment) the neural estimators train
data-parallel with no code change: :func:`setup` initialises the process group (gloo on CPU,
NCCL on CUDA, one device per local rank), every rank builds the same model from the same data
and seed, and each rank trains on its shard of every global batch. In a single process every
helper here is a no-op, so one code path serves both. See ``docs/distributed.md``.
"""

import contextlib
import datetime
import math
import os

import numpy as np
import torch
from torch import distributed as dist

__all__ = ["is_distributed", "world_size", "rank", "local_rank", "is_main_process", "setup",
           "timeout", "RankTimeoutError", "rank_timeouts", "shard_rows", "all_reduce_sum",
           "broadcast_flag", "gather_rows"]

TIMEOUT_VARIABLE = "SKCREATE_DISTRIBUTED_TIMEOUT"
# torch's own default (30 minutes) leaves a frozen rank unnoticed for half an hour; no
# collective of a fit waits on more than one epoch of another rank's work
DEFAULT_TIMEOUT = 300


def is_distributed():
    """Whether a process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size():
    """Processes in the group; before it is initialised, torchrun's ``WORLD_SIZE`` (or 1)."""
    return dist.get_world_size() if is_distributed() else int(os.environ.get("WORLD_SIZE", 1))


def rank():
    """This process's rank in the group; before it is initialised, torchrun's ``RANK`` (or 0).

    A script can thus ask :func:`is_main_process` before the first ``fit``.
    """
    return dist.get_rank() if is_distributed() else int(os.environ.get("RANK", 0))


def local_rank():
    """This process's rank on its machine (``LOCAL_RANK``, set by torchrun; 0 without it)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process():
    """Whether this process reports, saves and prints (rank 0, or the only process)."""
    return rank() == 0


class RankTimeoutError(TimeoutError):
    """A collective waited longer than :func:`timeout` for another rank."""


def timeout():
    """Seconds a rank waits for the others in a collective before the fit fails.

    ``SKCREATE_DISTRIBUTED_TIMEOUT`` in the environment (seconds, > 0), else 300 (5 minutes).
    It applies to the process group :func:`setup` initialises; a group the caller initialised
    keeps the timeout it was given.
    """
    value = os.environ.get(TIMEOUT_VARIABLE)
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{TIMEOUT_VARIABLE}={value!r}: expected a number of seconds > 0.")
    return seconds


@contextlib.contextmanager
def rank_timeouts():
    """Turn a collective's timeout inside the block into a :class:`RankTimeoutError`."""
    try:
        yield
    except RuntimeError as exc:
        if "timed out" not in str(exc).lower():
            raise
        raise RankTimeoutError(
            f"rank {rank()} waited more than its timeout for another rank, which is frozen, "
            f"overloaded or gone; the fit stops (set {TIMEOUT_VARIABLE} in seconds to wait "
            f"longer; see docs/distributed.md).") from exc


def setup(device):
    """Join (or initialise) the process group when launched by torchrun.

    With ``WORLD_SIZE > 1`` in the environment and no group yet, the group is initialised from
    the environment (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, set by torchrun): NCCL when
    ``device`` is CUDA, gloo otherwise, with :func:`timeout`. A group initialised by the
    caller is used as it is.

    Parameters
    ----------
    device : torch.device
        The estimator's resolved device.

    Returns
    -------
    device : torch.device
        ``cuda:LOCAL_RANK`` when training on CUDA in a group (one device per process), else
        ``device``.
    distributed : bool
        Whether training runs in a group of more than one process.
    """
    if not is_distributed() and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        if not dist.is_available():
            raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed; "
                               "set distributed=False to train in each process alone.")
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout()))
    if not is_distributed():
        return device, False
    if device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    return device, True


def shard_rows(n, shard=None, n_shards=None):
    """Positions ``0..n-1`` of one shard: every ``n_shards``-th from ``shard``.

    Striding (rather than contiguous blocks) keeps shards of length-sorted batches balanced.
    The shards cover every position exactly once, without padding; when ``n_shards`` does not
    divide ``n`` the first ``n % n_shards`` shards hold one more.

    Parameters
    ----------
    n : int
    shard, n_shards : int, optional
        Default this process's rank and the world size.
    """
    shard = rank() if shard is None else shard
    n_shards = world_size() if n_shards is None else n_shards
    return np.arange(shard, n, n_shards)


def all_reduce_sum(tensor):
    """Sum of ``tensor`` over ranks, in place; ``tensor`` itself in one process."""
    if is_distributed():
        dist.all_reduce(tensor)
    return tensor


def broadcast_flag(flag, device=None):
    """Rank 0's value of ``flag`` on every rank (one decision everywhere)."""
    if not is_distributed():
        return bool(flag)
    value = torch.tensor([float(flag)], device=device)
    dist.broadcast(value, 0)
    return bool(value.item())


class _GatherRows(torch.autograd.Function):
    """All-gather of row blocks of any sizes, with the gradient routed back to each block."""

    @staticmethod
    def forward(ctx, rows, sizes):
        ctx.sizes, ctx.rank = sizes, dist.get_rank()
        padded = rows.new_zeros((max(sizes),) + rows.shape[1:])
        padded[:len(rows)] = rows
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([part[:size] for part, size in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad):
        # The loss of the gathered rows is the same on every rank, so the sum over ranks of a
        # block's gradient is world_size times this rank's. No collective here: one inside
        # the backward pass would interleave with DDP's bucket all-reduces in an order that
        # differs between ranks whose shards differ in size (a mismatch, or a hang).
        start = sum(ctx.sizes[:ctx.rank])
        return grad[start:start + ctx.sizes[ctx.rank]] * len(ctx.sizes), None


def gather_rows(rows):
    """Every rank's ``rows`` concatenated in rank order, differentiable; ``rows`` in one process.

    A data-parallel fit's sharded batches apply it to the rows the alignment compares
    (:class:`skcreate.training.batches.JointBatch`'s ``gather``); a fit in one process never
    calls it.

    Meant for a loss over the global batch (Barlow Twins statistics, InfoNCE negatives) that
    reads only gathered rows, and is therefore the same on every rank: each rank's block gets
    ``world_size`` times its gradient, the sum over ranks, so that after
    DistributedDataParallel averages the parameter gradients they equal those of a single
    process that saw the whole batch. A loss that mixes gathered rows with this rank's own
    (local positives against global negatives) differs between ranks and is outside this
    contract.

    Parameters
    ----------
    rows : torch.Tensor, shape (B_rank, ...)
        This rank's rows; shards may differ in length.

    Returns
    -------
    torch.Tensor, shape (sum of B_rank, ...)
    """
    if not is_distributed():
        return rows
    size = torch.tensor([len(rows)], device=rows.device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return _GatherRows.apply(rows.contiguous(), [int(s) for s in sizes])
