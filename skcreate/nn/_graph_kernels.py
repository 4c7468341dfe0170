"""A CSR block's transposed product on the CPU (numba), for the backward pass of a graph
step's products.

scipy's transposed product is single-threaded and scatters each entry into a random output
row; this kernel puts the block in column order (a counting sort, one pass) and then sums each
output row over its column, the columns split over threads. The sums run in the order of the
block's rows, as scipy's do: the same floats. A scalable LightGCN step at 1M interactions
(8,000 rows, 170,000 entries, 75,000 columns): 25.5 ms, against 28.7 with scipy's product.
"""

import numpy as np

from ._compiled import balanced_bounds, n_threads, njit, run_spans

# below this many columns a thread's share runs in the calling thread
MIN_PER_THREAD = 16384


def _column_order(indptr, cols, values, n_cols):
    # the kernels read without bounds checks: a malformed block raises here instead
    if len(indptr) == 0 or indptr[0] != 0 or indptr[-1] > len(cols) or len(values) < len(cols):
        raise ValueError("malformed CSR block: indptr must start at 0 and end at most at "
                         "len(cols), with a value per column index")
    for row in range(len(indptr) - 1):
        if indptr[row + 1] < indptr[row]:
            raise ValueError("malformed CSR block: indptr must not decrease")
    colptr = np.zeros(n_cols + 1, dtype=np.int64)
    for entry in range(indptr[-1]):
        if cols[entry] < 0 or cols[entry] >= n_cols:
            raise ValueError("a CSR block's column index is outside [0, n_cols)")
        colptr[cols[entry] + 1] += 1
    for column in range(n_cols):
        colptr[column + 1] += colptr[column]
    slots = colptr[:-1].copy()
    rows = np.empty(indptr[-1], dtype=np.int64)
    ordered = np.empty(indptr[-1], dtype=values.dtype)
    for row in range(len(indptr) - 1):
        for entry in range(indptr[row], indptr[row + 1]):
            slot = slots[cols[entry]]
            slots[cols[entry]] = slot + 1
            rows[slot] = row
            ordered[slot] = values[entry]
    return colptr, rows, ordered


_column_order = njit(_column_order)


def _product_span(start, stop, indptr, cols, values, x, out):
    for row in range(start, stop):
        for j in range(x.shape[1]):
            out[row, j] = 0
        for entry in range(indptr[row], indptr[row + 1]):
            column, value = cols[entry], values[entry]
            for j in range(x.shape[1]):
                out[row, j] += value * x[column, j]


_product_span = njit(_product_span)


def transposed_product(indptr, cols, values, n_cols, x):
    """``B^T @ x`` for the CSR block ``B`` (``len(indptr) - 1`` x ``n_cols``), a new array:
    the block in column order, then each output row as a sum over its column in the order of
    ``B``'s rows (as scipy's transposed product sums), the columns split over threads."""
    if x.ndim != 2 or len(x) != len(indptr) - 1:
        raise ValueError(f"a block of {len(indptr) - 1} rows multiplies {len(indptr) - 1} "
                         f"rows by its transpose, got an array of shape {x.shape}")
    colptr, rows, ordered = _column_order(indptr, cols, values, n_cols)
    out = np.empty((n_cols, x.shape[1]), dtype=np.result_type(values, x))
    # spans of about equal entries
    bounds = balanced_bounds(colptr, n_threads(n_cols, MIN_PER_THREAD))
    run_spans(_product_span, bounds, colptr, rows, ordered, x, out)
    return out
