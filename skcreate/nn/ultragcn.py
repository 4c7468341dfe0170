"""UltraGCN (Mao et al., 2021): graph convolution approximated by constraint losses."""

import functools
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch.nn import functional as F

from .graph_encoder import GraphEncoder, lookup

__all__ = ["UltraGCNEncoder", "item_neighbours"]


def item_neighbours(user_items, n_neighbours=10):
    """UltraGCN item-item constraint: top co-occurrence neighbours and their weights.

    ``w_ij = G_ij / (g_i - G_ii) * sqrt(g_i / g_j)`` with ``G = A^T A`` and ``g_i`` its row sums,
    ``A`` the pattern of ``user_items``' nonzero entries. ``G`` is never built (it has
    ``sum_u degree(u)^2`` entries, 25 million at 1M synthetic interactions): each item's row
    is counted and its top entries kept, compiled and split over threads, in memory of the
    output's size.

    Parameters
    ----------
    user_items : scipy.sparse matrix or array-like, shape (n_users, n_items)
    n_neighbours : int, default=10

    Returns
    -------
    neighbours : numpy.ndarray of int64, shape (n_items, n_neighbours)
        By decreasing weight, ties to the smaller item code.
    weights : numpy.ndarray of float32, shape (n_items, n_neighbours)
        Zero where an item has fewer neighbours (its neighbours there are 0).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> neighbours, weights = item_neighbours(sp.csr_matrix([[1, 1, 0], [1, 1, 1]]), 2)
    >>> neighbours.tolist()
    [[1, 2], [0, 2], [0, 1]]
    >>> weights.astype(float).round(3).tolist()
    [[0.667, 0.43], [0.667, 0.43], [0.387, 0.387]]
    """
    if not isinstance(n_neighbours, Integral) or n_neighbours < 1:
        raise ValueError(f"n_neighbours must be an int >= 1, got {n_neighbours!r}.")
    a = sp.csr_matrix(user_items, copy=True)
    # entries summed first: duplicates that cancel are no edge
    a.sum_duplicates()
    a.eliminate_zeros()
    at = a.tocsc()
    # imported here, so that importing the package does not load numba
    from ._cooccurrence import top_cooccurrences
    return top_cooccurrences(at.indptr.astype(np.int64), at.indices.astype(np.int64),
                             a.indptr.astype(np.int64), a.indices.astype(np.int64),
                             n_neighbours)


class UltraGCNEncoder(GraphEncoder):
    """UltraGCN: LightGCN's infinite-layer limit as weighted BCE constraint losses.

    The embeddings are used as they are (no propagation); the graph enters through the
    constraint weights ``beta_ui = (1/d_u) sqrt((d_u + 1) / (d_i + 1))`` and the item-item
    neighbour term of :meth:`loss`.

    Parameters
    ----------
    n_factors : int, optional
        Embedding width; by default the width of the item table given to :meth:`build`.
    constraint_weight : float, default=1.0
        Weight of the beta-weighted (user-item constraint) term.
    item_weight : float, default=1.0
        Weight of the item-item constraint.
    n_neighbours : int, default=10
        Co-occurrence neighbours per item in the item-item constraint.
    n_negatives : int, default=10
        Negatives sampled per positive.
    negative_weight : float, default=10.0
        Weight of the negative terms.
    row_sparse : bool or "auto", default="auto"
        Row-sparse gradients of the rows a step reads, updated row by row, as in
        :class:`~skcreate.nn.LightGCNEncoder`; "auto": on graphs of more than
        ``large_graph`` (250,000) edges on a CPU.

    Examples
    --------
    >>> import scipy.sparse as sp, torch
    >>> enc = UltraGCNEncoder(n_factors=4, n_negatives=2).build(sp.csr_matrix([[1, 0, 1]]))
    >>> loss = enc.loss(enc.propagate(), torch.tensor([0]), torch.tensor([2]),
    ...                 torch.tensor([[1, 1]]))
    >>> loss.shape
    torch.Size([])
    """

    init_std = 1e-2

    _parameter_constraints = {
        "n_factors": [None, Interval(Integral, 1, None, closed="left")],
        "constraint_weight": [Interval(Real, 0, None, closed="left")],
        "item_weight": [Interval(Real, 0, None, closed="left")],
        "n_neighbours": [Interval(Integral, 1, None, closed="left")],
        "n_negatives": [Interval(Integral, 1, None, closed="left")],
        "negative_weight": [Interval(Real, 0, None, closed="left")],
        "row_sparse": ["boolean", StrOptions({"auto"})],
    }

    def __init__(self, n_factors=None, constraint_weight=1.0, item_weight=1.0, n_neighbours=10,
                 n_negatives=10, negative_weight=10.0, row_sparse="auto"):
        super().__init__()
        self.row_sparse = row_sparse
        self.n_factors = n_factors
        self.constraint_weight = constraint_weight
        self.item_weight = item_weight
        self.n_neighbours = n_neighbours
        self.n_negatives = n_negatives
        self.negative_weight = negative_weight

    def build(self, user_items, item_table=None):
        self._validate_params()
        n_users, n_items = user_items.shape
        neighbours, weights = item_neighbours(user_items, self.n_neighbours)
        self._measure(user_items)
        self._init_tables(n_users, n_items, item_table)
        user_degree = torch.as_tensor(np.asarray(user_items.sum(1)).ravel(), dtype=torch.float32)
        item_degree = torch.as_tensor(np.asarray(user_items.sum(0)).ravel(), dtype=torch.float32)
        self.register_buffer("beta_user", (user_degree + 1).sqrt() / user_degree.clamp_min(1))
        self.register_buffer("beta_item", 1.0 / (item_degree + 1).sqrt())
        self.register_buffer("neighbours", torch.as_tensor(neighbours))
        self.register_buffer("neighbour_weights", torch.as_tensor(weights))
        return self

    def propagate(self, generator=None):
        """The embeddings themselves: UltraGCN has no propagation."""
        return self.user_embedding.weight, self.item_table.catalogue

    def beta(self, users, items):
        """Constraint weights ``(1/d_u) sqrt((d_u + 1)/(d_i + 1))`` of (user, item) pairs."""
        return self.beta_user[users] * self.beta_item[items]

    def loss(self, embeddings, users, positives, negatives):
        u = self.user_embedding(users)
        # the rows a step reads, or the whole catalogue (a dense gradient)
        rows = self._item_rows if self._row_sparse else functools.partial(
            lookup, self.item_table.catalogue)
        pos = (u * rows(positives)).sum(-1)
        neg = torch.einsum("bd,bnd->bn", u, rows(negatives))
        pos_w = 1 + self.constraint_weight * self.beta(users, positives)
        neg_w = 1 + self.constraint_weight * self.beta(users.unsqueeze(1), negatives)
        loss = -(pos_w * F.logsigmoid(pos)).sum() \
            - self.negative_weight * (neg_w * F.logsigmoid(-neg)).mean(1).sum()
        if self.item_weight > 0:
            nbr = self.neighbours[positives]
            nbr_logits = torch.einsum("bd,bkd->bk", u, rows(nbr))
            loss = loss - self.item_weight * (self.neighbour_weights[positives]
                                              * F.logsigmoid(nbr_logits)).sum()
        return loss / len(users)
