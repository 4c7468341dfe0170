"""Plumbing of the package's compiled CPU kernels (numba): compilation and a split of a
kernel's work over Python threads.

numba's threading layers are not used: its OpenMP layer terminates a forked child, its
default one aborts when two threads launch at once. Kernels are compiled without the GIL
instead and a span of their work runs in each thread of a pool of this process.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

_pools = {}


def njit(function):
    """``function`` compiled without the GIL; error_model="numpy" (no division check), so that
    inner loops over a row vectorise. Cached on disk where the package's folder is
    writable, otherwise compiled in every process."""
    try:
        return numba.njit(nogil=True, cache=True, error_model="numpy")(function)
    except RuntimeError:
        return numba.njit(nogil=True, error_model="numpy")(function)


def _pool(n_threads):
    """A pool of ``n_threads`` threads of this process (a forked child makes its own: the
    parent's threads do not exist in it)."""
    key = (os.getpid(), n_threads)
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(n_threads, thread_name_prefix="skcreate-kernel")
    return _pools[key]


def n_threads(n_items, min_per_thread):
    """Threads for ``n_items`` of work: ``torch.get_num_threads()``, fewer where a thread would
    get fewer than ``min_per_thread`` (a hand-off costs more than that much work)."""
    return max(1, min(torch.get_num_threads(), n_items // min_per_thread))


def run_spans(kernel, bounds, *args):
    """``kernel(start, stop, *args)`` for each span of ``bounds`` (increasing ints, the first
    span in the calling thread, the others in the pool), returning once all are done. The
    spans must write disjoint outputs."""
    bounds = np.asarray(bounds, dtype=np.int64)
    spans = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
    if len(spans) == 1:
        kernel(*spans[0], *args)
        return
    others = [_pool(len(spans) - 1).submit(kernel, *span, *args) for span in spans[1:]]
    kernel(*spans[0], *args)
    for future in others:
        # raises a thread's error here
        future.result()


def even_bounds(n_items, n):
    """Bounds of ``n`` spans of ``n_items`` about equal in size."""
    return np.linspace(0, n_items, n + 1).astype(np.int64)


def balanced_bounds(cumulative, n):
    """Bounds of ``n`` spans of ``len(cumulative) - 1`` items about equal in work, for
    ``cumulative`` the work before each item and, last, in all (increasing from 0)."""
    bounds = np.searchsorted(cumulative, np.linspace(0, cumulative[-1], n + 1))
    bounds[0], bounds[-1] = 0, len(cumulative) - 1
    return bounds
