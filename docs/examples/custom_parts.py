"""A user's own CREATE parts, in one file: an alignment loss and a graph encoder.

Neither needs a change to skcreate:

    from custom_parts import CosineAlignment, MFEncoder
    CREATERecommender(alignment=CosineAlignment(scale=2.0), graph_encoder=MFEncoder())
"""

from torch import nn
from torch.nn import functional as F

from skcreate.nn import Alignment, GraphEncoder, ItemTable
from skcreate.nn.losses import bpr_loss


class CosineAlignment(Alignment):
    """Pull each user's transformer state towards its graph embedding: ``scale * (1 - cos)``."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def forward(self, sequence_states, graph_users):
        return self.scale * (1 - F.cosine_similarity(sequence_states, graph_users)).mean()


class MFEncoder(GraphEncoder):
    """Matrix factorisation as a graph branch: no propagation, BPR on the edges."""

    def __init__(self, n_factors=None, init_std=0.1):
        super().__init__()
        self.n_factors = n_factors
        self.init_std = init_std

    def build(self, user_items, item_table=None):
        n_users, n_items = user_items.shape
        self.user_embedding = nn.Embedding(n_users, self.n_factors or item_table.weight.shape[1])
        nn.init.normal_(self.user_embedding.weight, std=self.init_std)
        self.item_table = item_table or ItemTable(n_items, self.n_factors, std=self.init_std)
        return self

    def propagate(self, generator=None):
        return self.user_embedding.weight, self.item_table.catalogue

    def loss(self, embeddings, users, positives, negatives):
        user_emb, item_emb = embeddings
        return bpr_loss(user_emb[users], item_emb[positives], item_emb[negatives])
