"""LightGCN (He et al., 2020): parameter-free propagation over the normalised graph, BPR loss."""

import torch
from torch.nn import functional as F

from .graph_encoder import GraphEncoder
from .losses import bpr_loss
from .sparse import drop_edges, edge_mirrors, normalized_adjacency, symmetric_spmm

__all__ = ["LightGCNEncoder"]


class LightGCNEncoder(GraphEncoder):
    """LightGCN: ``E(k+1) = Â E(k)``, embeddings = mean of layers 0..K, trained by BPR.

    Parameters
    ----------
    n_factors : int, optional
        Embedding width; by default the width of the item table given to :meth:`build`.
    n_layers : int, default=3
        Propagation hops K.
    normalize_layers : bool, default=False
        Row-L2-normalise each propagated layer before averaging.
    edge_dropout : float, default=0.0
        Share of edges dropped at every training pass.

    Attributes
    ----------
    user_embedding : torch.nn.Embedding
        Layer-0 user rows (after :meth:`build`).
    item_table : skcreate.nn.ItemTable
        Layer-0 item rows, shared with CREATE's sequence encoder.
    adjacency : torch.Tensor
        ``D^-1/2 A D^-1/2`` of the training graph, sparse CSR; moves with the module.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> enc = LightGCNEncoder(n_factors=4, n_layers=2).build(sp.csr_matrix([[1, 0, 1], [0, 1, 1]]))
    >>> [t.shape for t in enc.propagate()]
    [torch.Size([2, 4]), torch.Size([3, 4])]
    """

    def __init__(self, n_factors=None, n_layers=3, normalize_layers=False, edge_dropout=0.0):
        super().__init__()
        self.n_factors = n_factors
        self.n_layers = n_layers
        self.normalize_layers = normalize_layers
        self.edge_dropout = edge_dropout
        self.adjacency = None
        self._mirrors = None

    def build(self, user_items, item_table=None):
        n_users, n_items = user_items.shape
        self._init_tables(n_users, n_items, item_table)
        self.n_users = n_users
        self.adjacency = normalized_adjacency(user_items)
        self._mirrors = None
        return self

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.adjacency is not None:
            self.adjacency = fn(self.adjacency)
            self._mirrors = None
        return self

    def __getstate__(self):
        # the mirror index is a cache of one training run, not part of the fitted model
        return {**super().__getstate__(), "_mirrors": None}

    def layer0(self):
        """Concatenated user and item rows of layer 0, shape (n_users + n_items, d)."""
        return torch.cat([self.user_embedding.weight, self.item_table.catalogue])

    def propagate(self, generator=None):
        adjacency = self.adjacency
        if self.training and self.edge_dropout > 0:
            # the training graph is fixed, so its mirror index is sorted once, not every step
            if self._mirrors is None:
                self._mirrors = edge_mirrors(adjacency)
            adjacency = drop_edges(adjacency, self.edge_dropout, generator, self._mirrors)
        layer = self.layer0()
        total = layer
        for _ in range(self.n_layers):
            layer = symmetric_spmm(adjacency, layer)
            total = total + (F.normalize(layer, dim=-1) if self.normalize_layers else layer)
        out = total / (self.n_layers + 1)
        return out[:self.n_users], out[self.n_users:]

    def loss(self, embeddings, users, positives, negatives):
        user_emb, item_emb = embeddings
        return bpr_loss(user_emb[users], item_emb[positives], item_emb[negatives])

    def penalty(self, users, positives, negatives):
        return super().penalty(users, positives, negatives) \
            + self.item_table.catalogue[negatives].pow(2).sum()
