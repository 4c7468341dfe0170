"""Helpers of the ``benchmarks/`` scripts: data specs, option parsing, machine facts, workers.

Not part of the package: the scripts import this module (their own folder is on the path) and
never each other. The worker functions run in fresh spawned processes (so that each run's peak
memory is its own), which needs them importable by name; a spawned child inherits the path.
"""

import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import torch

from skcreate.apps.cli import parse_value
from skcreate.apps.comparison import evaluate_model
from skcreate.data.datasets import load_dataset, make_interactions
from skcreate.nn import GraphEncoder
from skcreate.training import Callback

__all__ = ["add_data_arguments", "pyplot", "load_data", "git_commit", "parse_value",
           "parse_sets", "machine", "peak_mib", "matmul_gflops", "sasrec_epoch_flops",
           "in_fresh_process", "evaluate_with_memory", "fit_and_time", "StopAfter",
           "StepsDone", "StepTimer", "add_synthetic_arguments", "synthetic_data",
           "add_step_arguments", "step_data"]


def add_data_arguments(parser, default="amazon-beauty"):
    """The ``--dataset`` and ``--data-home`` options every script takes."""
    parser.add_argument("--dataset", default=default,
                        help="a skcreate.data.datasets name, or synthetic[:n_users[:n_items]]")
    parser.add_argument("--data-home", default=None)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None (with a note) without it."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib missing: no figures", file=sys.stderr)
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def load_data(dataset, data_home=None):
    """Interactions of a :mod:`skcreate.data.datasets` name, or
    ``synthetic[:n_users[:n_items]]``."""
    if dataset.startswith("synthetic"):
        _, *sizes = dataset.split(":")
        n_users, n_items = (list(map(int, sizes)) + [20000, 5000][len(sizes):])[:2]
        return make_interactions(n_users=n_users, n_items=n_items, random_state=0)
    return load_dataset(dataset, data_home=data_home)


def git_commit():
    """Short hash of the checkout's HEAD, or "" outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def parse_sets(items):
    """``["MODEL.param=value", ...]`` into ``{MODEL: {param: value}}``."""
    params = {}
    for item in items:
        key, value = item.split("=", 1)
        model, param = key.split(".", 1)
        params.setdefault(model, {})[param] = parse_value(value)
    return params


def machine():
    """One line on the hardware and software a result was measured with."""
    mem = ""
    if os.path.exists("/proc/meminfo"):
        total_kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {total_kib / 2**20:.0f} GiB RAM"
    cpu = platform.processor() or platform.machine()
    return (f"{os.cpu_count()} cores ({cpu}){mem}, {torch.get_num_threads()} torch threads, "
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()} {platform.release()}")


def peak_mib():
    """Peak resident memory of this process so far, in MiB.

    On Linux the high-water mark of the process's own memory (``VmHWM``): ``ru_maxrss``
    keeps the parent's peak across fork and exec, so a run in a fresh spawned process would
    report the parent's (its data generation, say) whenever that was larger. Elsewhere
    ``ru_maxrss`` (KiB on Linux and the BSDs).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_gflops(size=2048, repeats=5):
    """Measured float32 matmul throughput of this machine (the ceiling for CE)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def sasrec_epoch_flops(model, train):
    """FLOPs of one SASRec epoch: full-catalogue CE on real positions plus the transformer."""
    lengths = np.minimum(train.groupby(model.user_col).size().to_numpy(), model.max_len + 1)
    positions = int((lengths - 1).clip(min=0).sum())
    d, n_items = model.n_factors, train[model.item_col].nunique()
    ce = 6 * positions * n_items * d  # logits forward, two matmuls backward
    # per token and block: qkv + out projections 4d^2, feed-forward 2d^2, attention ~2Ld
    per_token = model.n_blocks * (6 * 2 * d * d + 2 * 2 * model.max_len * d)
    return ce + 3 * positions * per_token


def in_fresh_process(function, *args):
    """``function(*args)`` in a fresh spawned process; ``{"error": ...}`` if the process died.

    An executor (not a Pool) reports a killed worker (e.g. out of memory) instead of waiting for
    it forever.
    """
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        try:
            return pool.submit(function, *args).result()
        except BrokenProcessPool as exc:
            return {"error": f"process died: {exc}"}


def evaluate_with_memory(model, train, test, catalog, ks=(10, 100)):
    """:func:`~skcreate.apps.comparison.evaluate_model` plus the process's peak memory."""
    # test histories hold items first seen after the split; that is expected here
    warnings.filterwarnings("ignore", message=".*unseen at fit.*")
    row = evaluate_model(model, train, test, catalog, ks=ks)
    row["peak_rss_mib"] = peak_mib()
    return row


def fit_and_time(model, X, histories, k, large_graph=None):
    """Fit ``model`` on ``X``, recommend ``k`` items to ``histories``; timings and memory.

    ``large_graph`` replaces :attr:`skcreate.nn.GraphEncoder.large_graph` in this process
    (``float("inf")``: the graph encoders' "auto" options never take the scalable mode, the
    defaults before it).

    Returns
    -------
    dict
        ``fit_s``, ``recommend_s``, ``start_mib`` (before fit), ``peak_mib``, ``threads``,
        ``n_items`` and the model's ``epoch_seconds``, ``epoch_stages``, ``n_epochs``.
    """
    if large_graph is not None:
        GraphEncoder.large_graph = large_graph
    start_mib = peak_mib()
    start = time.perf_counter()
    model.fit(X)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    model.recommend(histories, k=k)
    return {"fit_s": fit_s, "recommend_s": time.perf_counter() - start, "start_mib": start_mib,
            "peak_mib": peak_mib(), "threads": torch.get_num_threads(),
            "n_items": model.n_items_, "epoch_seconds": model.epoch_seconds_,
            "epoch_stages": model.epoch_stages_, "n_epochs": model.n_epochs_}


class StopAfter(Callback):
    """Stop training after ``n_epochs`` epochs of all stages (time CREATE's warm-up alone).

    A class of this module, so that a spawned worker can unpickle it.
    """

    def __init__(self, n_epochs):
        self.n_epochs = n_epochs

    def on_epoch_end(self, record):
        return record.epoch >= self.n_epochs


def add_synthetic_arguments(parser):
    """The synthetic data options of the step-timing scripts."""
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--mean-length", type=float, default=20)
    parser.add_argument("--seed", type=int, default=0)


def synthetic_data(args):
    """``make_interactions`` data of :func:`add_synthetic_arguments`' options."""
    return make_interactions(n_users=round(args.interactions / args.mean_length),
                             n_items=args.items, mean_length=args.mean_length,
                             random_state=args.seed)


def add_step_arguments(parser, steps, skip):
    """The synthetic data and step window options of the step-timing scripts."""
    add_synthetic_arguments(parser)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--skip", type=int, default=skip)


def step_data(parser, args):
    """:func:`synthetic_data` of :func:`add_step_arguments`' options (checked)."""
    if not 0 < args.skip < args.steps:
        parser.error(f"--skip must be in (0, --steps), got {args.skip}")
    return synthetic_data(args)


class StepsDone(Exception):
    """Raised by :class:`StepTimer` to end a fit once its steps are timed."""


class StepTimer(Callback):
    """Records the time of every step's end; raises :class:`StepsDone` after ``n_steps``
    steps or at the end of the first epoch, whichever comes first (the caller catches it)."""

    def __init__(self, n_steps):
        self.n_steps = n_steps
        self.times = []

    def on_step_end(self, step, terms):
        self.times.append(time.perf_counter())
        if len(self.times) == self.n_steps:
            raise StepsDone

    def on_epoch_end(self, record):
        raise StepsDone
