"""Sparse user-item graph operations: normalised adjacency, symmetric products, edge dropout,
and the row blocks of mini-batch propagation."""

import warnings

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["sparse_tensor", "normalized_adjacency", "symmetric_spmm", "dropout_seed",
           "edge_keep", "drop_edges", "RowBlock", "row_block", "block_spmm"]


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


# splitmix64 constants as signed int64 (torch integer arithmetic wraps modulo 2**64)
_GOLDEN = 0x9E3779B97F4A7C15 - 2**64
_MIX_1 = 0xBF58476D1CE4E5B9 - 2**64
_MIX_2 = 0x94D049BB133111EB - 2**64


def _shift_right(z, bits):
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def dropout_seed(generator=None):
    """One step's edge-dropout seed: an int64 scalar tensor drawn from ``generator``."""
    return torch.randint(-2**63, 2**63 - 1, (), generator=generator, dtype=torch.int64)


def edge_keep(rows, cols, rate, seed):
    """Whether entries (rows, cols) of a symmetric adjacency survive one edge-dropout draw.

    The draw is a hash (splitmix64) of ``seed`` and the undirected edge, so both directions of
    an edge share it, and the entries of any set of rows get the decisions they get in the
    whole adjacency: mini-batch propagation over a subgraph drops exactly the edges that full
    propagation drops with the same seed. An edge survives with probability ``1 - rate``.

    Parameters
    ----------
    rows, cols : torch.Tensor of int64
        Node indices of the entries (below 2**31).
    rate : float
        Share of edges dropped.
    seed : torch.Tensor
        Int64 scalar, :func:`dropout_seed`.

    Returns
    -------
    torch.Tensor of bool
    """
    z = (torch.minimum(rows, cols) << 32 | torch.maximum(rows, cols)) * _GOLDEN \
        + seed.to(rows.device)
    z = (z ^ _shift_right(z, 30)) * _MIX_1
    z = (z ^ _shift_right(z, 27)) * _MIX_2
    z = z ^ _shift_right(z, 31)
    # the top 53 bits as a uniform draw in [0, 1)
    return _shift_right(z, 11).double() * 2.0**-53 >= rate


def drop_edges(adjacency, rate, generator=None, seed=None):
    """Edge dropout that keeps the adjacency symmetric, rescaled to keep expectations.

    Parameters
    ----------
    adjacency : torch.Tensor
        Symmetric sparse CSR matrix.
    rate : float
        Share of (undirected) edges dropped.
    generator : torch.Generator, optional
        Source of the seed when ``seed`` is not given.
    seed : torch.Tensor, optional
        :func:`dropout_seed`; the same seed drops the same edges as :func:`row_block`.

    Returns
    -------
    torch.Tensor
        Sparse CSR matrix with the kept entries, values divided by ``1 - rate``.
    """
    seed = dropout_seed(generator) if seed is None else seed
    crow, col = adjacency.crow_indices(), adjacency.col_indices()
    row = torch.repeat_interleave(torch.arange(len(crow) - 1, device=crow.device), crow.diff())
    keep = edge_keep(row, col, rate, seed)
    indptr = torch.cat([crow.new_zeros(1), keep.cumsum(0)])[crow]
    return _csr_tensor(indptr, col[keep], adjacency.values()[keep] / (1 - rate),
                       adjacency.shape)


class RowBlock:
    """Rows of a sparse adjacency, in CSR form over global column indices.

    Attributes
    ----------
    rows : torch.Tensor of int64
        The node of each block row, sorted.
    indptr, cols, values : torch.Tensor
        CSR structure of the block; ``cols`` index the whole adjacency's columns.
    """

    def __init__(self, rows, indptr, cols, values):
        self.rows, self.indptr, self.cols, self.values = rows, indptr, cols, values

    @property
    def nnz(self):
        return len(self.cols)


def row_block(adjacency, rows, dropout=0.0, seed=None, fanout=None, generator=None):
    """The CSR rows ``rows`` of ``adjacency``, optionally with edge dropout and sampled
    neighbours.

    Vectorised: the entries of every row are gathered at once from the CSR arrays.

    Parameters
    ----------
    adjacency : torch.Tensor
        Symmetric sparse CSR matrix.
    rows : torch.Tensor of int64
        Sorted node indices.
    dropout : float, default=0.0
        Edge-dropout rate; with ``seed``, the block holds exactly the entries of these rows
        that ``drop_edges(adjacency, dropout, seed=seed)`` keeps.
    seed : torch.Tensor, optional
        :func:`dropout_seed`, required when ``dropout > 0``.
    fanout : int, optional
        Keep at most this many entries of each row, drawn uniformly without replacement and
        scaled by ``degree / fanout``, so that the block's product with any matrix is an
        unbiased estimate of the whole rows' (after dropout). Rows of at most ``fanout``
        entries are kept whole: a fanout as large as the largest degree gives the exact
        block.
    generator : torch.Generator, optional
        Source of the sampling.

    Returns
    -------
    RowBlock
    """
    crow = adjacency.crow_indices()
    starts = crow[rows]
    counts = crow[rows + 1] - starts
    indptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    # entry e of block row r sits at starts[r] + (e - indptr[r]) in the whole matrix
    positions = torch.repeat_interleave(starts - indptr[:-1], counts) \
        + torch.arange(int(indptr[-1]), device=crow.device)
    cols, values = adjacency.col_indices()[positions], adjacency.values()[positions]
    if dropout > 0:
        keep = edge_keep(torch.repeat_interleave(rows, counts), cols, dropout, seed)
        indptr = torch.cat([indptr.new_zeros(1), keep.cumsum(0)])[indptr]
        cols, values = cols[keep], values[keep] / (1 - dropout)
    if fanout is not None:
        indptr, cols, values = _sample_rows(indptr, cols, values, fanout, generator)
    return RowBlock(rows, indptr, cols, values)


def _sample_rows(indptr, cols, values, fanout, generator):
    """At most ``fanout`` entries of each CSR row, uniformly, scaled to stay unbiased."""
    counts = indptr[1:] - indptr[:-1]
    if not bool((counts > fanout).any()):
        return indptr, cols, values
    row_of = torch.repeat_interleave(torch.arange(len(counts), device=cols.device), counts)
    # a random order within each row (rows stay in order): the first fanout are kept
    noise = torch.rand(len(cols), generator=generator, dtype=torch.float64).to(cols.device)
    order = torch.argsort(row_of.to(torch.float64) + noise)
    rank = torch.arange(len(cols), device=cols.device) - indptr[:-1][row_of]
    chosen = order[rank < fanout].sort().values
    kept = counts.clamp(max=fanout)
    scale = (counts.to(values.dtype) / kept.clamp(min=1).to(values.dtype))
    values = values[chosen] * torch.repeat_interleave(scale, kept)
    indptr = torch.cat([indptr.new_zeros(1), kept.cumsum(0)])
    return indptr, cols[chosen], values


class _BlockSpMM(torch.autograd.Function):
    """``B @ x`` for a sparse CSR block ``B``; the gradient is ``B^T @ grad``."""

    @staticmethod
    def forward(ctx, indptr, cols, values, n_cols, x):
        ctx.save_for_backward(indptr, cols, values)
        ctx.n_cols = n_cols
        return _csr_tensor(indptr, cols, values, (len(indptr) - 1, n_cols)) @ x

    @staticmethod
    def backward(ctx, grad):
        indptr, cols, values = ctx.saved_tensors
        shape = (len(indptr) - 1, ctx.n_cols)
        if grad.device.type == "cpu":
            # scipy multiplies by the transpose without building it; torch's CPU transpose
            # product converts the layout first, several times slower than the product
            matrix = sp.csr_matrix((values.numpy(), cols.numpy(), indptr.numpy()), shape=shape)
            grad_x = torch.from_numpy(matrix.T @ np.ascontiguousarray(grad.numpy()))
        else:
            grad_x = _csr_tensor(indptr, cols, values, shape).t() @ grad
        return None, None, None, None, grad_x


def block_spmm(indptr, cols, values, n_cols, x):
    """Product of a sparse CSR block (``len(indptr) - 1`` x ``n_cols``) and a dense ``x``.

    Differentiable in ``x``; the block's arrays are constants.
    """
    # sparse products have no bfloat16 kernels: under autocast they stay float32
    with torch.autocast(x.device.type, enabled=False):
        return _BlockSpMM.apply(indptr, cols, values, n_cols, x.float())
