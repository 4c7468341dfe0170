"""The CREATE network: a sequence branch and a graph branch over one item table, aligned."""

import torch
from torch import nn

from .graph_model import edge_nodes

__all__ = ["CREATEModel"]


class CREATEModel(nn.Module):
    """Both branches of CREATE and their alignment (paper sections 3.2-3.5).

    Parameters
    ----------
    sequence : skcreate.nn.SequenceModel
        Sequence branch (SASRec, or BERT4Rec); it alone serves at inference.
    graph : skcreate.nn.GraphModel
        Graph branch, built on ``sequence.item_table`` so both read and write one table.
    alignment : skcreate.nn.Alignment, optional
        Loss between the batch users' transformer states and graph embeddings; None trains
        without it.

    Notes
    -----
    ``forward(batch)`` computes the terms the batch asks for: ``batch["sequence"]`` (a
    :class:`~skcreate.nn.SequenceModel` batch) gives ``"local"`` and, with an alignment,
    ``"align"``; ``batch["edges"]`` (a :class:`~skcreate.nn.GraphModel` batch) gives
    ``"global"``. CREATE's warm-up feeds edges only, so the transformer gets no gradient.
    """

    def __init__(self, sequence, graph, alignment=None):
        super().__init__()
        if graph.item_table is not sequence.item_table:
            raise ValueError("the graph encoder must share the sequence encoder's item table.")
        self.sequence = sequence
        self.graph = graph
        self.alignment = alignment

    @property
    def item_table(self):
        return self.sequence.item_table

    @staticmethod
    def _graph_nodes(batch, aligned):
        """(users, items) codes of the graph rows a step reads."""
        aligned_users = batch["sequence"]["users"] if aligned else None
        if "edges" not in batch:
            return aligned_users, aligned_users.new_zeros(0)
        users, items = edge_nodes(batch["edges"])
        if aligned_users is not None:
            users = torch.cat([users, aligned_users])
        return users, items

    def forward(self, batch):
        """Named loss terms of one step (unweighted)."""
        terms = {}
        aligned = False
        if "sequence" in batch:
            terms["local"], states = self.sequence.local_and_state(batch["sequence"])
            # standardising over a batch of one is undefined
            aligned = self.alignment is not None and len(states) > 1
        if "edges" in batch or aligned:
            # one embedding pass serves the graph loss and the alignment: it computes the
            # rows both read (and draws one edge dropout for both)
            embeddings = self.graph.embed(*self._graph_nodes(batch, aligned))
            if "edges" in batch:
                terms["global"] = self.graph.edge_loss(batch["edges"], embeddings)
            if aligned:
                users = embeddings[0][batch["sequence"]["users"]]
                terms["align"] = self.alignment(states, users)
        return terms
