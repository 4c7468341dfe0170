"""Sparse user-item graph operations: normalised adjacency, symmetric products, edge dropout,
and the row blocks of mini-batch propagation."""

import warnings

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["sparse_tensor", "normalized_adjacency", "symmetric_spmm", "dropout_seed",
           "edge_keep", "drop_edges", "RowBlock", "row_block", "random_walks", "sum_blocks",
           "unique_codes", "block_spmm", "change_spmm", "stack_blocks", "distinct_rows"]


# transposed block products run a compiled kernel on a CPU (the tests compare it with torch's
# path, which GPUs take)
_COMPILED = True


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
    """The CSR rows ``rows`` of ``adjacency``, optionally with sampled neighbours and edge
    dropout.

    Vectorised: the entries of every row are gathered at once from the CSR arrays. With a
    fanout, only the sampled entries are read, so the block costs at most ``fanout`` entries
    per row however large the degrees (an edge's item is drawn by popularity, and on
    long-tailed catalogues the expected degree of a batch's items grows with the graph).

    Parameters
    ----------
    adjacency : torch.Tensor
        Symmetric sparse CSR matrix.
    rows : torch.Tensor of int64
        Sorted node indices.
    dropout : float, default=0.0
        Edge-dropout rate; with ``seed``, the block holds exactly the entries of these rows
        that ``drop_edges(adjacency, dropout, seed=seed)`` keeps (of the sampled entries,
        with a fanout).
    seed : torch.Tensor, optional
        :func:`dropout_seed`, required when ``dropout > 0``.
    fanout : int, optional
        Keep at most this many entries of each row, a uniform draw without replacement
        scaled by ``degree / fanout``, so that the block's product with any matrix is an
        unbiased estimate of the whole rows' (after dropout, which is independent of the
        draw). Rows of at most ``fanout`` entries are kept whole: a fanout as large as the
        largest degree gives the exact block.
    generator : torch.Generator, optional
        Source of the sampling.

    Returns
    -------
    RowBlock
    """
    crow = adjacency.crow_indices()
    starts = crow[rows]
    counts = crow[rows + 1] - starts
    if fanout is None:
        kept, scale = counts, None
        offsets = _row_offsets(counts)
    else:
        kept, offsets, scale = _sampled_offsets(counts, fanout, generator)
    indptr = torch.cat([kept.new_zeros(1), kept.cumsum(0)])
    positions = torch.repeat_interleave(starts, kept) + offsets
    cols = adjacency.col_indices().index_select(0, positions)
    values = adjacency.values().index_select(0, positions)
    if scale is not None:
        values = values * torch.repeat_interleave(scale, kept)
    if dropout > 0:
        keep = edge_keep(torch.repeat_interleave(rows, kept), cols, dropout, seed)
        indptr = torch.cat([indptr.new_zeros(1), keep.cumsum(0)])[indptr]
        cols, values = cols[keep], values[keep] / (1 - dropout)
    return RowBlock(rows, indptr, cols, values)


def _row_offsets(counts):
    """``0 .. count - 1`` for each row, concatenated."""
    ends = counts.cumsum(0)
    return torch.arange(int(ends[-1]) if len(ends) else 0, device=counts.device) \
        - torch.repeat_interleave(ends - counts, counts)


def _sampled_offsets(counts, fanout, generator):
    """Offsets of at most ``fanout`` entries of each row, uniform without replacement (sorted
    within a row), and each row's scale ``count / kept``, None when every row is whole."""
    kept = counts.clamp(max=fanout)
    offsets = _row_offsets(kept)
    large = (counts > fanout).nonzero().squeeze(1)
    if not len(large):
        return kept, offsets, None
    # Floyd's algorithm, one draw per row at a time: a uniform subset of fanout offsets
    n = counts[large]
    chosen = n.new_empty(len(large), fanout)
    for step in range(fanout):
        top = n - fanout + step
        draw = torch.rand(len(large), generator=generator, dtype=torch.float64)
        draw = (draw.to(n.device) * (top + 1)).long().minimum(top)
        taken = (chosen[:, :step] == draw[:, None]).any(1)
        chosen[:, step] = torch.where(taken, top, draw)
    slots = (kept.cumsum(0) - kept)[large, None] + torch.arange(fanout, device=n.device)
    offsets[slots] = chosen.sort(1).values
    scale = counts.to(torch.float32) / kept.clamp(min=1).to(torch.float32)
    return kept, offsets, scale


def random_walks(adjacency, starts, n_walks, n_hops, generator=None):
    """Uniform random walks over a symmetric-normalised adjacency, as unbiased estimates of its
    powers: ``(A^k x)[v]`` is the mean over ``v``'s walks of ``weights[k-1] * x[ends[k-1]]``.

    A hop moves to a neighbour drawn uniformly; with ``A = D^-1/2 A D^-1/2`` the importance
    weight of a k-hop walk telescopes to ``sqrt(degree(start) / degree(end))``. A walk that
    reaches a node without neighbours stops there with weight 0 (its terms are 0 in ``A^k``).

    Parameters
    ----------
    adjacency : torch.Tensor
        Symmetric-normalised sparse CSR matrix (:func:`normalized_adjacency`).
    starts : torch.Tensor of int64
        Start nodes.
    n_walks, n_hops : int
        Walks per start; hops per walk.
    generator : torch.Generator, optional

    Returns
    -------
    ends : list of torch.Tensor of int64
        ``ends[k - 1]``, shape (len(starts) * n_walks,): each walk's node after k hops, the
        walks of ``starts[i]`` at ``i * n_walks .. (i + 1) * n_walks - 1``.
    weights : list of torch.Tensor of float32
        The matching weights, divided by ``n_walks`` (sum them per start for the mean).
    """
    crow, col = adjacency.crow_indices(), adjacency.col_indices()
    degree = crow.diff()
    position = starts.repeat_interleave(n_walks)
    # index_select rather than indexing: several times faster on CPU for these sizes
    here = degree.index_select(0, position)
    start_degree = here.to(torch.float32)
    # every neighbour has a neighbour: only the walks of isolated starts never move
    alive = start_degree > 0
    ends, weights = [], []
    for _ in range(n_hops):
        draw = torch.rand(len(position), generator=generator, dtype=torch.float64)
        offset = (draw.to(here.device) * here).long().minimum((here - 1).clamp(min=0))
        entry = (crow.index_select(0, position) + offset).clamp(max=max(len(col) - 1, 0))
        position = torch.where(alive, col.index_select(0, entry), position)
        here = degree.index_select(0, position)
        end_degree = here.to(torch.float32).clamp(min=1)
        ends.append(position)
        weights.append(torch.where(alive, (start_degree / end_degree).sqrt() / n_walks,
                                   torch.zeros_like(end_degree)))
    return ends, weights


def unique_codes(codes, size):
    """``codes.unique(return_inverse=True)`` for codes in ``[0, size)``.

    When ``size`` is at most a few times the number of codes, a mask over every code replaces
    the sort (about 4x faster for a step's rows of a graph of that size); the results are the
    same: the distinct codes sorted, and each code's position among them.
    """
    if size > 4 * len(codes):
        return codes.unique(return_inverse=True)
    mask = torch.zeros(size, dtype=torch.bool, device=codes.device)
    mask[codes] = True
    distinct = mask.nonzero().squeeze(1)
    positions = torch.empty(size, dtype=torch.long, device=codes.device)
    positions[distinct] = torch.arange(len(distinct), device=codes.device)
    return distinct, positions[codes]


def sum_blocks(blocks):
    """The sum of CSR blocks with the same rows, as one CSR block: each row holds the entries
    of that row of every block (repeated columns are kept, a product adds them).

    Parameters
    ----------
    blocks : list of (indptr, cols, values)
        CSR arrays of blocks with ``len(indptr) - 1`` rows each.

    Returns
    -------
    indptr, cols, values : torch.Tensor
    """
    if len(blocks) == 1:
        return blocks[0]
    counts = torch.stack([indptr.diff() for indptr, _, _ in blocks])
    indptr = torch.cat([counts.new_zeros(1), counts.sum(0).cumsum(0)])
    # where each block's part of a row starts: the row's start plus the earlier blocks' counts
    starts = indptr[:-1] + counts.cumsum(0) - counts
    first = blocks[0][1]
    cols = first.new_empty(int(indptr[-1]))
    values = blocks[0][2].new_empty(len(cols))
    for (block_indptr, block_cols, block_values), block_starts, block_counts in \
            zip(blocks, starts, counts):
        row_starts = block_indptr[:-1]
        shift = torch.repeat_interleave(block_starts - row_starts, block_counts,
                                        output_size=len(block_cols))
        position = torch.arange(len(block_cols), device=first.device) + shift
        cols[position] = block_cols
        values[position] = block_values
    return indptr, cols, values


class _BlockSpMM(torch.autograd.Function):
    """``B @ x`` for a sparse CSR block ``B``; the gradient is ``B^T @ grad``."""

    @staticmethod
    def forward(ctx, indptr, cols, values, n_cols, x):
        ctx.save_for_backward(indptr, cols, values)
        ctx.n_cols = n_cols
        return _product(indptr, cols, values, n_cols, x)

    @staticmethod
    def backward(ctx, grad):
        indptr, cols, values = ctx.saved_tensors
        return None, None, None, None, _transposed_product(indptr, cols, values, ctx.n_cols,
                                                           grad)


def _product(indptr, cols, values, n_cols, x):
    """``B @ x`` for the CSR block ``B`` (``len(indptr) - 1`` x ``n_cols``)."""
    return _csr_tensor(indptr, cols, values, (len(indptr) - 1, n_cols)) @ x


def _transposed_product(indptr, cols, values, n_cols, x):
    """``B^T @ x`` for the CSR block ``B`` (``len(indptr) - 1`` x ``n_cols``), a new array."""
    if _COMPILED and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        # torch's CPU transpose product converts the layout first, several times slower
        # than the product; imported here, so that `import skcreate` does not load numba
        from ._graph_kernels import transposed_product
        return torch.from_numpy(transposed_product(indptr.numpy(), cols.numpy(), values.numpy(),
                                                   n_cols, np.ascontiguousarray(x.numpy())))
    return _csr_tensor(indptr, cols, values, (len(indptr) - 1, n_cols)).t() @ x


def block_spmm(indptr, cols, values, n_cols, x):
    """Product of a sparse CSR block (``len(indptr) - 1`` x ``n_cols``) and a dense ``x``.

    Differentiable in ``x``; the block's arrays are constants.
    """
    # sparse products have no bfloat16 kernels: under autocast they stay float32
    with torch.autocast(x.device.type, enabled=False):
        return _BlockSpMM.apply(indptr, cols, values, n_cols, x.float())


class _ChangeSpMM(torch.autograd.Function):
    """``(B @ (x - reference[read]), x[own])``: the gradient of ``x`` is ``B^T grad`` with
    the second output's gradient added at ``own``, built in one array."""

    @staticmethod
    def forward(ctx, indptr, cols, values, x, reference, read, own):
        ctx.save_for_backward(indptr, cols, values, own)
        ctx.n_cols = len(x)
        change = reference.index_select(0, read)
        torch.sub(x, change, out=change)
        return _product(indptr, cols, values, len(x), change), x.index_select(0, own)

    @staticmethod
    def backward(ctx, grad, grad_own):
        indptr, cols, values, own = ctx.saved_tensors
        if grad is None:
            grad_x = grad_own.new_zeros(ctx.n_cols, grad_own.shape[1])
        else:
            grad_x = _transposed_product(indptr, cols, values, ctx.n_cols, grad)
        if grad_own is not None:
            grad_x.index_add_(0, own, grad_own)
        return None, None, None, grad_x, None, None, None


def change_spmm(indptr, cols, values, x, reference, read, own):
    """A CSR block's product with the change of rows since a reference, and some of the rows.

    ``(B @ (x - reference[read]), x[own])``, differentiable in ``x``, for a block ``B`` of
    ``len(indptr) - 1`` rows and ``len(x)`` columns: historical propagation's estimate of
    how its layers moved, and the step's own rows. The backward pass builds ``x``'s
    gradient in one array (the block's transposed product, the own rows' gradient added in
    place) instead of a zero-filled array for the rows and a sum of the two.

    Parameters
    ----------
    indptr, cols, values : torch.Tensor
        CSR arrays of ``B``, constants.
    x : torch.Tensor, shape (n, d)
    reference : torch.Tensor, shape (m, d)
        Constant rows, of which ``read`` (n,) are those of ``x``.
    read, own : torch.Tensor of int64
        ``own`` distinct.

    Returns
    -------
    product : torch.Tensor, shape (len(indptr) - 1, d)
    rows : torch.Tensor, shape (len(own), d)
    """
    with torch.autocast(x.device.type, enabled=False):
        return _ChangeSpMM.apply(indptr, cols, values, x.float(), reference, read, own)


def stack_blocks(blocks):
    """CSR blocks stacked vertically, as one block (a product gives each block's product,
    one after another).

    Parameters
    ----------
    blocks : list of (indptr, cols, values)

    Returns
    -------
    indptr, cols, values : torch.Tensor
    """
    if len(blocks) == 1:
        return blocks[0]
    starts = torch.tensor([0] + [len(cols) for _, cols, _ in blocks[:-1]]).cumsum(0)
    indptr = torch.cat([indptr[:-1] + start for (indptr, _, _), start in zip(blocks, starts)]
                       + [blocks[-1][0][-1:] + starts[-1]])
    return (indptr, torch.cat([cols for _, cols, _ in blocks]),
            torch.cat([values for _, _, values in blocks]))


class _DistinctRows(torch.autograd.Function):
    """Rows of tables, concatenated; each table's gradient row-sparse at its rows, in order."""

    @staticmethod
    def forward(ctx, rows, *weights):
        ctx.rows, ctx.shapes = rows, [weight.shape for weight in weights]
        out = weights[0].new_empty(sum(len(index) for index in rows), weights[0].shape[1])
        # each table's rows written in place: no copy of a concatenation
        for weight, index, part in zip(weights, rows, out.split([len(r) for r in rows])):
            torch.index_select(weight, 0, index, out=part)
        return out

    @staticmethod
    def backward(ctx, grad):
        parts = grad.split([len(index) for index in ctx.rows])
        return (None, *(torch.sparse_coo_tensor(index[None], part, shape, check_invariants=False)
                        for index, part, shape in zip(ctx.rows, parts, ctx.shapes)))


def distinct_rows(weight, rows):
    """Rows ``rows`` of ``weight`` with a row-sparse gradient, for sorted distinct ``rows``.

    The gradient of ``F.embedding(rows, weight, sparse=True)`` without the embedding's
    backward pass: the upstream gradient itself, at ``rows``. With ``rows`` sorted and
    distinct it is a coalesced gradient, which :class:`~skcreate.nn.LazyAdam` and
    :func:`~skcreate.nn.optim.clip_grad_norm` take without a sort (any other ``rows`` give
    the same gradient, which they coalesce).

    ``weight`` and ``rows`` may be sequences of tables and their rows: the rows of each
    table, concatenated (written in place, without a copy of a concatenation).
    """
    if isinstance(weight, torch.Tensor):
        weight, rows = [weight], [rows]
    if len(weight) != len(rows):
        raise ValueError(f"distinct_rows needs one rows tensor per table, got {len(weight)} "
                         f"tables and {len(rows)} rows tensors.")
    return _DistinctRows.apply(list(rows), *weight)
