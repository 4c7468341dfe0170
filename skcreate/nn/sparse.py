"""Sparse user-item graph operations: normalised adjacency, symmetric products, edge dropout."""

import warnings

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["sparse_tensor", "normalized_adjacency", "symmetric_spmm", "edge_mirrors",
           "drop_edges"]


def sparse_tensor(matrix):
    """A scipy sparse matrix as a coalesced float32 torch COO tensor."""
    coo = sp.coo_matrix(matrix)
    indices = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
    return torch.sparse_coo_tensor(indices, torch.as_tensor(coo.data, dtype=torch.float32),
                                   coo.shape, check_invariants=False).coalesce()


def normalized_adjacency(user_items):
    """Symmetric-normalised bipartite adjacency ``D^-1/2 A D^-1/2`` as a sparse CSR tensor.

    Parameters
    ----------
    user_items : scipy.sparse matrix, shape (n_users, n_items)
        Binary interactions.

    Returns
    -------
    torch.Tensor
        Sparse CSR tensor of shape (n_users + n_items, n_users + n_items), float32.
    """
    coo = sp.coo_matrix(user_items)
    n_users, n_items = coo.shape
    rows = np.concatenate([coo.row, coo.col + n_users])
    cols = np.concatenate([coo.col + n_users, coo.row])
    degree = np.bincount(rows, minlength=n_users + n_items).astype(np.float64)
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1)), 0.0)
    size = n_users + n_items
    matrix = sp.csr_matrix((inv_sqrt[rows] * inv_sqrt[cols], (rows, cols)), shape=(size, size))
    return _csr_tensor(matrix.indptr, matrix.indices, matrix.data, matrix.shape)


def _csr_tensor(indptr, indices, values, shape):
    with warnings.catch_warnings():
        # torch flags sparse CSR as beta; CSR matmul is the fastest sparse path on CPU
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.as_tensor(indptr, dtype=torch.int64), torch.as_tensor(indices, dtype=torch.int64),
            torch.as_tensor(values, dtype=torch.float32), shape)


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ x`` for a symmetric sparse ``A``: the gradient is ``A @ grad``, no transpose."""

    @staticmethod
    def forward(ctx, adjacency, x):
        ctx.adjacency = adjacency
        # sparse products have no bfloat16 kernels: under autocast they stay float32
        with torch.autocast(x.device.type, enabled=False):
            return adjacency @ x

    @staticmethod
    def backward(ctx, grad):
        return None, ctx.adjacency @ grad


def symmetric_spmm(adjacency, x):
    """Product of a symmetric sparse CSR matrix and a dense matrix, differentiable in ``x``.

    Skipping autograd's sparse transpose makes a LightGCN forward and backward about 2x faster
    on CPU.
    """
    return _SymmetricSpMM.apply(adjacency, x)


def edge_mirrors(adjacency):
    """Row of each stored entry and the position of its mirror (col, row)."""
    crow, col = adjacency.crow_indices(), adjacency.col_indices()
    row = torch.repeat_interleave(torch.arange(len(crow) - 1, device=crow.device),
                                  crow.diff())
    # CSR stores entries sorted by (row, col), so sorting by (col, row) lists the mirrors
    return row, torch.argsort(col * adjacency.shape[0] + row)


def drop_edges(adjacency, rate, generator, mirrors=None):
    """Edge dropout that keeps the adjacency symmetric, rescaled to keep expectations.

    Both directions of an edge share the smaller of their two uniform draws, so an undirected
    edge survives with probability ``(1 - t)^2 = 1 - rate``. ``mirrors`` is
    ``edge_mirrors(adjacency)``, computed here when not given.
    """
    row, mirror = edge_mirrors(adjacency) if mirrors is None else mirrors
    col = adjacency.col_indices()
    size = adjacency.shape[0]
    draw = torch.rand(len(col), generator=generator).to(col.device)
    keep = torch.minimum(draw, draw[mirror]) >= 1 - (1 - rate) ** 0.5
    counts = torch.bincount(row[keep], minlength=size)
    indptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return _csr_tensor(indptr, col[keep], adjacency.values()[keep] / (1 - rate),
                       adjacency.shape)
