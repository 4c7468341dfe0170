"""Graph encoders of the user-item bipartite graph: LightGCN and UltraGCN."""

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["sparse_tensor", "normalized_adjacency", "symmetric_spmm", "LightGCNEncoder",
           "UltraGCNEncoder", "item_neighbours"]


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


def _edge_mirrors(adjacency):
    """Row of each stored entry and the position of its mirror (col, row)."""
    crow, col = adjacency.crow_indices(), adjacency.col_indices()
    row = torch.repeat_interleave(torch.arange(len(crow) - 1, device=crow.device),
                                  crow.diff())
    # CSR stores entries sorted by (row, col), so sorting by (col, row) lists the mirrors
    return row, torch.argsort(col * adjacency.shape[0] + row)


def _drop_edges(adjacency, rate, generator, mirrors=None):
    """Edge dropout that keeps the adjacency symmetric, rescaled to keep expectations.

    Both directions of an edge share the smaller of their two uniform draws, so an undirected
    edge survives with probability ``(1 - t)^2 = 1 - rate``. ``mirrors`` is
    ``_edge_mirrors(adjacency)``, computed here when not given.
    """
    row, mirror = _edge_mirrors(adjacency) if mirrors is None else mirrors
    col = adjacency.col_indices()
    size = adjacency.shape[0]
    draw = torch.rand(len(col), generator=generator).to(col.device)
    keep = torch.minimum(draw, draw[mirror]) >= 1 - (1 - rate) ** 0.5
    counts = torch.bincount(row[keep], minlength=size)
    indptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return _csr_tensor(indptr, col[keep], adjacency.values()[keep] / (1 - rate),
                       adjacency.shape)


class LightGCNEncoder(nn.Module):
    """LightGCN (He et al., 2020): parameter-free propagation, mean of layers 0..K.

    Parameters
    ----------
    n_users, n_items : int
    n_factors : int
    n_layers : int
        Propagation hops K.
    normalize_layers : bool
        Row-L2-normalise each propagated layer before averaging.
    edge_dropout : float
        Share of edges dropped at every training pass.
    item_embedding : torch.nn.Embedding, optional
        Shared item table with a padding row 0 (CREATE); rows 1..n_items are the items.

    Examples
    --------
    >>> import scipy.sparse as sp, torch
    >>> enc = LightGCNEncoder(2, 3, n_factors=4, n_layers=2)
    >>> adj = normalized_adjacency(sp.csr_matrix([[1, 0, 1], [0, 1, 1]]))
    >>> [t.shape for t in enc(adj)]
    [torch.Size([2, 4]), torch.Size([3, 4])]
    """

    def __init__(self, n_users, n_items, n_factors=64, n_layers=3, normalize_layers=False,
                 edge_dropout=0.0, item_embedding=None):
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.n_layers = n_layers
        self.normalize_layers = normalize_layers
        self.edge_dropout = edge_dropout
        self.user_embedding = nn.Embedding(n_users, n_factors)
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        if item_embedding is None:
            item_embedding = nn.Embedding(n_items + 1, n_factors, padding_idx=0)
            nn.init.normal_(item_embedding.weight, std=0.1)
        self.item_embedding = item_embedding
        self._mirrors = None

    def __getstate__(self):
        # the mirror cache belongs to one training graph, not to the fitted model
        return {**super().__getstate__(), "_mirrors": None}

    def layer0(self):
        """Concatenated user and item rows of layer 0, shape (n_users + n_items, d)."""
        items = self.item_embedding.weight[1:self.n_items + 1]
        return torch.cat([self.user_embedding.weight, items])

    def forward(self, adjacency, generator=None):
        """Propagated (users, items) embeddings."""
        if self.training and self.edge_dropout > 0:
            # the training graph is fixed, so its mirror index is sorted once, not every step
            if self._mirrors is None or self._mirrors[0] is not adjacency:
                self._mirrors = (adjacency, _edge_mirrors(adjacency))
            adjacency = _drop_edges(adjacency, self.edge_dropout, generator, self._mirrors[1])
        layer = self.layer0()
        total = layer
        for _ in range(self.n_layers):
            layer = symmetric_spmm(adjacency, layer)
            total = total + (F.normalize(layer, dim=-1) if self.normalize_layers else layer)
        out = total / (self.n_layers + 1)
        return out[:self.n_users], out[self.n_users:]


def item_neighbours(user_items, n_neighbours=10):
    """UltraGCN item-item constraint: top co-occurrence neighbours and their weights.

    ``w_ij = G_ij / (g_i - G_ii) * sqrt(g_i / g_j)`` with ``G = A^T A`` and ``g_i`` its row sums.

    Returns
    -------
    neighbours : numpy.ndarray of int, shape (n_items, n_neighbours)
    weights : numpy.ndarray of float32, shape (n_items, n_neighbours)
        Zero where an item has fewer neighbours.
    """
    a = sp.csr_matrix(user_items, dtype=np.float64)
    a.data[:] = 1.0
    g = (a.T @ a).tocoo()
    row_sum = np.bincount(g.row, weights=g.data, minlength=a.shape[1])
    diagonal = np.bincount(g.row[g.row == g.col], weights=g.data[g.row == g.col],
                           minlength=a.shape[1])
    off = g.row != g.col
    r, c, v = g.row[off], g.col[off], g.data[off]
    w = v / np.maximum(row_sum[r] - diagonal[r], 1e-12) * np.sqrt(row_sum[r] / row_sum[c])
    order = np.lexsort((-w, r))
    r, c, w = r[order], c[order], w[order]
    starts = np.searchsorted(r, np.arange(a.shape[1]))
    rank = np.arange(len(r)) - starts[r]
    keep = rank < n_neighbours
    neighbours = np.zeros((a.shape[1], n_neighbours), dtype=np.int64)
    weights = np.zeros((a.shape[1], n_neighbours), dtype=np.float32)
    neighbours[r[keep], rank[keep]] = c[keep]
    weights[r[keep], rank[keep]] = w[keep]
    return neighbours, weights


class UltraGCNEncoder(nn.Module):
    """UltraGCN (Mao et al., 2021): graph convolution approximated by constraint losses.

    The embeddings are used as they are (no propagation); the graph enters through the
    constraint weights ``beta_ui = (1/d_u) sqrt((d_u + 1) / (d_i + 1))`` and the item-item
    neighbour term of :meth:`loss`.

    Parameters
    ----------
    n_users, n_items, n_factors : int
    user_degree, item_degree : numpy.ndarray
        Interactions per user and per item in the training graph.
    neighbours, neighbour_weights : numpy.ndarray
        Output of :func:`item_neighbours`.
    constraint_weight : float
        Weight of the beta-weighted (user-item constraint) term.
    item_weight : float
        Weight of the item-item constraint.
    negative_weight : float
        Weight of the negative terms.
    item_embedding : torch.nn.Embedding, optional
        Shared item table with a padding row 0.
    """

    def __init__(self, n_users, n_items, n_factors, user_degree, item_degree, neighbours,
                 neighbour_weights, constraint_weight=1.0, item_weight=1.0,
                 negative_weight=1.0, item_embedding=None):
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.constraint_weight = constraint_weight
        self.item_weight = item_weight
        self.negative_weight = negative_weight
        self.user_embedding = nn.Embedding(n_users, n_factors)
        nn.init.normal_(self.user_embedding.weight, std=1e-2)
        if item_embedding is None:
            item_embedding = nn.Embedding(n_items + 1, n_factors, padding_idx=0)
            nn.init.normal_(item_embedding.weight, std=1e-2)
        self.item_embedding = item_embedding
        user_degree = torch.as_tensor(user_degree, dtype=torch.float32)
        item_degree = torch.as_tensor(item_degree, dtype=torch.float32)
        self.register_buffer("beta_user", (user_degree + 1).sqrt() / user_degree.clamp_min(1))
        self.register_buffer("beta_item", 1.0 / (item_degree + 1).sqrt())
        self.register_buffer("neighbours", torch.as_tensor(neighbours))
        self.register_buffer("neighbour_weights", torch.as_tensor(neighbour_weights))

    def forward(self, adjacency=None, generator=None):
        """(users, items) embeddings; the adjacency is not needed and accepted for symmetry."""
        return self.user_embedding.weight, self.item_embedding.weight[1:self.n_items + 1]

    def beta(self, users, items):
        """Constraint weights ``(1/d_u) sqrt((d_u + 1)/(d_i + 1))`` of (user, item) pairs."""
        return self.beta_user[users] * self.beta_item[items]

    def loss(self, users, positives, negatives):
        """UltraGCN objective on a batch of (user, positive, negatives (B, n_neg)) codes."""
        u = self.user_embedding(users)
        items = self.item_embedding.weight[1:self.n_items + 1]
        pos = (u * items[positives]).sum(-1)
        neg = torch.einsum("bd,bnd->bn", u, items[negatives])
        pos_w = 1 + self.constraint_weight * self.beta(users, positives)
        neg_w = 1 + self.constraint_weight * self.beta(users.unsqueeze(1), negatives)
        loss = -(pos_w * F.logsigmoid(pos)).sum() \
            - self.negative_weight * (neg_w * F.logsigmoid(-neg)).mean(1).sum()
        if self.item_weight > 0:
            nbr = self.neighbours[positives]
            nbr_logits = torch.einsum("bd,bkd->bk", u, items[nbr])
            loss = loss - self.item_weight * (self.neighbour_weights[positives]
                                              * F.logsigmoid(nbr_logits)).sum()
        return loss / len(users)
