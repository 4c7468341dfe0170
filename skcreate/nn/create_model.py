"""The CREATE network: a sequence branch and a graph branch over one item table, aligned."""

import torch
from torch import nn

from .graph_encoder import lookup
from .graph_model import edge_nodes
from .item_table import ItemTable

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
        without it. It is built for the item table's width; its ``positions``,
        ``graph_view`` and ``stop_gradient`` say which rows it compares.
    neighbour_gradients : bool, default=True
        False: a joint step's graph rows send gradients to the layer-0 rows of its own users
        and items only (:meth:`skcreate.nn.GraphEncoder.embed`; ignored where the encoder's
        ``own_rows_step()`` is False).
    warmup_neighbour_gradients : bool, default=True
        The same for the warm-up's steps (batches of edges only).

    Notes
    -----
    ``forward(batch)`` computes the terms a :class:`~skcreate.training.batches.JointBatch` asks for:
    its ``sequence`` (a :class:`~skcreate.nn.SequenceModel` batch) gives ``"local"`` and, with
    an alignment, ``"align"``; its ``edges`` (a :class:`~skcreate.nn.GraphModel` batch) give
    ``"global"``. CREATE's warm-up feeds edges only, so the transformer gets no gradient.
    Its ``align``, further sequences of the same layout, widens the alignment's batch: their
    states join the batch's in the alignment, and nothing else reads them. The rows the
    alignment compares pass through the batch's ``gather`` first (in data-parallel training,
    every rank's rows: the alignment sees the global batch).
    """

    def __init__(self, sequence, graph, alignment=None, neighbour_gradients=True,
                 warmup_neighbour_gradients=True):
        super().__init__()
        if graph.item_table is not sequence.item_table:
            raise ValueError("the graph encoder must share the sequence encoder's item table.")
        if alignment is not None:
            alignment._validate_params()
            alignment.build(sequence.item_table.embedding.embedding_dim)
        self.sequence = sequence
        self.graph = graph
        self.alignment = alignment
        self.neighbour_gradients = neighbour_gradients
        self.warmup_neighbour_gradients = warmup_neighbour_gradients

    @property
    def item_table(self):
        return self.sequence.item_table

    def _views(self, batch, hidden):
        """Paired (transformer state, graph user code) rows the alignment compares."""
        users = batch.users
        if self.alignment.positions == "last":
            return hidden[:, -1], users
        real = batch.inputs != ItemTable.padding
        return hidden[real], users.repeat_interleave(real.sum(1))

    @staticmethod
    def _graph_nodes(batch, aligned_users):
        """(users, items) codes of the graph rows a step reads."""
        if batch.edges is None:
            return aligned_users, aligned_users.new_zeros(0)
        users, items = edge_nodes(batch.edges)
        if aligned_users is not None:
            users = torch.cat([users, aligned_users])
        return users, items

    def forward(self, batch):
        """Named loss terms of one step (unweighted)."""
        terms = {}
        aligned = False
        if batch.sequence is not None:
            terms["local"], hidden = self.sequence.local_and_hidden(batch.sequence)
            if self.alignment is not None:
                states, users = self._views(batch.sequence, hidden)
                if batch.align is not None:
                    more_states, more_users = self._views(
                        batch.align, self.sequence.encoder(batch.align.inputs))
                    states = torch.cat([states, more_states])
                    users = torch.cat([users, more_users])
                # standardising over a batch of one is undefined
                aligned = len(states) > 1
        propagated = aligned and self.alignment.graph_view == "propagated"
        embeddings = None
        if batch.edges is not None or propagated:
            # one embedding pass serves the graph loss and the alignment: it computes the
            # rows both read (and draws one edge dropout for both)
            neighbours = self.warmup_neighbour_gradients if batch.sequence is None \
                else self.neighbour_gradients
            own_rows = self.training and not neighbours and self.graph.encoder.own_rows_step()
            embeddings = self.graph.embed(*self._graph_nodes(batch, users if propagated
                                                             else None),
                                          neighbour_gradients=not own_rows)
        if batch.edges is not None:
            terms["global"] = self.graph.edge_loss(batch.edges, embeddings)
        if aligned:
            graph_users = lookup(embeddings[0], users) if propagated \
                else self.graph.encoder.user_embedding(users)
            if self.alignment.stop_gradient == "sequence":
                states = states.detach()
            elif self.alignment.stop_gradient == "graph":
                graph_users = graph_users.detach()
            terms["align"] = self.alignment(batch.gather(states), batch.gather(graph_users))
        return terms
