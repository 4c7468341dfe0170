"""LazyAdam's update of a row-sparse gradient on the CPU: one pass over each row (numba).

torch updates the rows in about ten passes (gathers of the moments, elementwise steps, writes
back), each over every row; this kernel reads and writes each row's weights and moments once.
On 2 threads a scalable LightGCN step at 1M interactions (two tables, 32,500 rows each)
updates its rows in 5.5-5.8 instead of 8.4-8.7 ms (a table's 32,500 rows alone: 1.7 ms on
2 threads, 2.9 on one; in a step torch's idle threads still spin beside them).
"""

import math

import torch

from ._compiled import even_bounds, n_threads, njit, run_spans

# below this many rows a step's update runs in the calling thread (a hand-off costs more)
MIN_ROWS_PER_THREAD = 4096


def _update_span(start, stop, param, exp_avg, exp_avg_sq, rows, grad, one_minus_beta1, beta2,
                 one_minus_beta2, weight_decay, step_size, root_correction, eps):
    for i in range(start, stop):
        row = rows[i]
        for j in range(param.shape[1]):
            g = grad[i, j] + weight_decay * param[row, j]
            m = exp_avg[row, j]
            m = m + one_minus_beta1 * (g - m)
            v = beta2 * exp_avg_sq[row, j] + one_minus_beta2 * g * g
            exp_avg[row, j] = m
            exp_avg_sq[row, j] = v
            param[row, j] = param[row, j] + step_size * (m / (math.sqrt(v) / root_correction
                                                              + eps))


_update_span = njit(_update_span)


def supported(param, values, *moments):
    """Whether :func:`adam_rows` updates ``param`` and its ``moments`` from a row-sparse
    gradient's ``values``: contiguous CPU tables of float32 or float64 (numba has no half
    types; a GPU updates by torch's kernels)."""
    return (param.device.type == "cpu" and param.dim() == 2
            and param.dtype in (torch.float32, torch.float64)
            and all(t.is_contiguous() and t.dtype == param.dtype and t.device == param.device
                    for t in (param, *moments)) and values.dtype == param.dtype)


def adam_rows(param, exp_avg, exp_avg_sq, rows, values, betas, weight_decay, size,
              root_correction, eps):
    """Adam's update of rows ``rows`` (distinct) of ``param`` and its moments, in place.

    The formulas of :class:`~skcreate.nn.LazyAdam`'s torch update, in the parameter's dtype:
    ``g = values + weight_decay * param[rows]``, the moments' moving averages, then
    ``param[rows] -= size * m / (sqrt(v) / root_correction + eps)``. The rows are split over
    ``torch.get_num_threads()`` threads; each row is one thread's (the rows are distinct), so
    the result does not depend on the threads.
    """
    arrays = (param.detach().numpy(), exp_avg.numpy(), exp_avg_sq.numpy())
    rows, values = rows.contiguous().numpy(), values.detach().contiguous().numpy()
    scalar = arrays[0].dtype.type
    beta1, beta2 = betas
    scalars = (scalar(1 - beta1), scalar(beta2), scalar(1 - beta2), scalar(weight_decay),
               scalar(-size), scalar(root_correction), scalar(eps))
    # the kernel writes without bounds checks: a row outside the table is an error before
    # any row changes
    if len(rows) and (rows.min() < 0 or rows.max() >= len(arrays[0])):
        raise IndexError(f"row-sparse gradient of rows {rows.min()}..{rows.max()} for a table "
                         f"of {len(arrays[0])} rows")
    if values.shape != (len(rows), arrays[0].shape[1]):
        raise ValueError(f"row-sparse gradient values of shape {values.shape} for "
                         f"{len(rows)} rows of width {arrays[0].shape[1]}")
    threads = n_threads(len(rows), MIN_ROWS_PER_THREAD)
    run_spans(_update_span, even_bounds(len(rows), threads), *arrays, rows, values, *scalars)
