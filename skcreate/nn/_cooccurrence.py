"""UltraGCN's item-item neighbours on the CPU (numba): each item's strongest co-occurrences,
without the item-item matrix.

``G = A^T A`` has ``sum_u degree(u)^2`` entries: 25 million at 1M synthetic interactions,
where building and sorting them as triplets took 12.7 s and 1 GiB (3.7 GiB at 3M). Each
item's row of ``G`` is counted here into one dense accumulator per thread, its top entries
kept as it is read, and the row dropped: the memory is the output's, the time
``sum_u degree(u)^2`` additions (0.22 s at 1M).
"""

import math

import numpy as np

from ._compiled import balanced_bounds, n_threads, njit, run_spans

# below this many additions a thread's share runs in the calling thread
MIN_PER_THREAD = 1 << 20


def _top_span(start, stop, item_ptr, item_users, user_ptr, user_items, row_sum, neighbours,
              weights):
    n_items, k = len(item_ptr) - 1, neighbours.shape[1]
    counts = np.zeros(n_items, dtype=np.float64)
    touched = np.empty(n_items, dtype=np.int64)
    best = np.empty(k, dtype=np.int64)
    best_weight = np.empty(k, dtype=np.float64)
    for item in range(start, stop):
        n_touched = 0
        for entry in range(item_ptr[item], item_ptr[item + 1]):
            user = item_users[entry]
            for other_entry in range(user_ptr[user], user_ptr[user + 1]):
                other = user_items[other_entry]
                if other != item:
                    if counts[other] == 0:
                        touched[n_touched] = other
                        n_touched += 1
                    counts[other] += 1
        # the formula and the order of numpy's evaluation of it: the same floats
        # G_ii: the item's users
        denominator = max(row_sum[item] - (item_ptr[item + 1] - item_ptr[item]), 1e-12)
        size = 0
        for t in range(n_touched):
            other = touched[t]
            weight = counts[other] / denominator * math.sqrt(row_sum[item] / row_sum[other])
            counts[other] = 0
            # the kept entries by decreasing weight, ties to the smaller item
            slot = size
            while slot > 0 and (best_weight[slot - 1] < weight or (
                    best_weight[slot - 1] == weight and best[slot - 1] > other)):
                slot -= 1
            if slot == k:
                continue
            last = min(size, k - 1)
            for move in range(last, slot, -1):
                best[move] = best[move - 1]
                best_weight[move] = best_weight[move - 1]
            best[slot] = other
            best_weight[slot] = weight
            size = min(size + 1, k)
        for slot in range(k):
            if slot < size:
                neighbours[item, slot] = best[slot]
                weights[item, slot] = best_weight[slot]
            else:
                neighbours[item, slot] = 0
                weights[item, slot] = 0


_top_span = njit(_top_span)


def top_cooccurrences(item_ptr, item_users, user_ptr, user_items, n_neighbours):
    """Each item's ``n_neighbours`` strongest co-occurring items under UltraGCN's weight.

    ``w_ij = G_ij / (g_i - G_ii) * sqrt(g_i / g_j)``, ``G = A^T A`` for the binary user-item
    matrix ``A`` given by its CSC (``item_ptr``, ``item_users``) and CSR (``user_ptr``,
    ``user_items``) arrays (int64, distinct indices within a row), ``g`` its row sums. Items
    are split over threads by their share of the additions.

    Returns
    -------
    neighbours : numpy.ndarray of int64, shape (n_items, n_neighbours)
        By decreasing weight, ties to the smaller item; 0 past an item's co-occurrences.
    weights : numpy.ndarray of float32, shape (n_items, n_neighbours)
        The weights (computed in float64), 0 past an item's co-occurrences.
    """
    n_items = len(item_ptr) - 1
    # g_i = sum over the item's users of their degrees, the additions of item i's row: the
    # differences of the additions before each item (integers, exact in float64)
    user_degree = np.diff(user_ptr).astype(np.float64)
    work = np.concatenate([[0.0], np.cumsum(user_degree[item_users])])[item_ptr]
    row_sum = np.diff(work)
    neighbours = np.empty((n_items, n_neighbours), dtype=np.int64)
    weights = np.empty((n_items, n_neighbours), dtype=np.float32)
    bounds = balanced_bounds(work, n_threads(int(work[-1]), MIN_PER_THREAD))
    run_spans(_top_span, bounds, item_ptr, item_users, user_ptr, user_items, row_sum,
              neighbours, weights)
    return neighbours, weights
