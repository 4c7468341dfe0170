"""The training step of a graph encoder: its own loss plus L2 on the rows a batch touches."""

import torch
from torch import nn

__all__ = ["GraphModel", "edge_nodes"]


def edge_nodes(batch):
    """(users, items) codes an edge batch reads: its users, its positives and negatives."""
    return batch.users, torch.cat([batch.positives, batch.negatives.reshape(-1)])


class GraphModel(nn.Module):
    """A :class:`~skcreate.nn.GraphEncoder` trained on batches of edges.

    Parameters
    ----------
    encoder : skcreate.nn.GraphEncoder
        Built on the training graph.
    regularization : float
        Weight of ``encoder.penalty`` (summed squares), divided by twice the batch size.
    generator : torch.Generator, optional
        Source of the encoder's training randomness (edge dropout).

    Notes
    -----
    A batch holds item and user codes as attributes: ``users`` and ``positives`` (B,) and
    ``negatives`` (B, encoder.n_negatives) (a :class:`~skcreate.training.batches.EdgeBatch`).
    """

    def __init__(self, encoder, regularization=1e-4, generator=None):
        super().__init__()
        self.encoder = encoder
        self.regularization = regularization
        self.generator = generator

    @property
    def item_table(self):
        return self.encoder.item_table

    def propagate(self):
        """This step's (users, items) embeddings, every row."""
        return self.encoder.propagate(self.generator)

    def embed(self, users, items, neighbour_gradients=True):
        """This step's (users, items) embeddings, readable at ``users`` and ``items``;
        ``neighbour_gradients`` as in :meth:`skcreate.nn.GraphEncoder.embed`."""
        if neighbour_gradients:
            # an encoder written before the option need not take it
            return self.encoder.embed(users, items, self.generator)
        return self.encoder.embed(users, items, self.generator, neighbour_gradients=False)

    def edge_loss(self, batch, embeddings):
        """Graph loss of an edge batch given this step's embeddings (:meth:`embed`)."""
        users, positives, negatives = batch.users, batch.positives, batch.negatives
        loss = self.encoder.loss(embeddings, users, positives, negatives)
        penalty = self.encoder.step_penalty(embeddings, users, positives, negatives)
        return loss + self.regularization * penalty / (2 * len(users))

    def forward(self, batch):
        """Named loss terms of one step: ``{"global": loss}``."""
        return {"global": self.edge_loss(batch, self.embed(*edge_nodes(batch)))}
