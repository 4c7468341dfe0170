"""The CREATE network: a sequence encoder and a graph encoder over one item table."""

from torch import nn

__all__ = ["CREATEModel"]


class CREATEModel(nn.Module):
    """Container of the two branches of CREATE (paper sections 3.2-3.4).

    Parameters
    ----------
    sequence : skcreate.nn.SASRecEncoder
        Sequence branch (SASRec, or bidirectional for BERT4Rec); it alone serves at inference.
    graph : skcreate.nn.LightGCNEncoder or skcreate.nn.UltraGCNEncoder
        Graph branch, built on ``sequence.item_embedding`` so both read and write one table.
    """

    def __init__(self, sequence, graph):
        super().__init__()
        if graph.item_embedding is not sequence.item_embedding:
            raise ValueError("the graph encoder must share the sequence encoder's item table.")
        self.sequence = sequence
        self.graph = graph

    @property
    def item_embedding(self):
        return self.sequence.item_embedding
