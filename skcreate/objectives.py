"""Training objectives: how batches are drawn and turned into a loss for the training loop.

Each objective exposes ``batches(epoch)`` and ``loss(batch, epoch) -> (loss, terms)``, the
interface of :func:`skcreate.training.train`.
"""

import numpy as np
import torch

from .nn.losses import (barlow_twins_loss, bpr_loss, full_cross_entropy, info_nce_loss,
                        scalable_cross_entropy)

__all__ = ["NextItemObjective", "MaskedItemObjective", "GraphObjective", "JointObjective",
           "trim_padding"]


def trim_padding(items):
    """Drop the leading columns that are padding in every row of a left-padded batch."""
    real = (items != 0).any(0)
    first = int(real.int().argmax()) if bool(real.any()) else items.shape[1] - 1
    return items[:, first:]


def _chunks(order, size):
    return [order[i:i + size] for i in range(0, len(order), size)]


class _SequenceObjective:
    """Shared batching of per-user sequences."""

    def __init__(self, encoder, sequences, batch_size, rng, loss="ce", sce_params=None,
                 generator=None):
        self.encoder = encoder
        self.sequences = torch.as_tensor(sequences)
        self.batch_size = batch_size
        self.rng = rng
        self.loss_name = loss
        self.sce_params = sce_params or {}
        self.generator = generator
        self.lengths = (sequences != 0).sum(1)
        self.rows = np.flatnonzero(self.lengths >= 2)

    @property
    def device(self):
        return self.encoder.item_embedding.weight.device

    def batches(self, epoch):
        # batches of similar lengths waste little compute on padding; buckets of 50 batches
        # drawn at random keep the order of batches and their members random
        order = self.rng.permutation(self.rows)
        span = 50 * self.batch_size
        batches = []
        for start in range(0, len(order), span):
            bucket = order[start:start + span]
            bucket = bucket[np.argsort(self.lengths[bucket], kind="stable")]
            batches.extend(_chunks(bucket, self.batch_size))
        return [batches[i] for i in self.rng.permutation(len(batches))]

    def _item_loss(self, hidden, targets):
        weight = self.encoder.catalogue_weight
        if self.loss_name == "sce":
            return scalable_cross_entropy(hidden, targets, weight, generator=self.generator,
                                          **self.sce_params)
        return full_cross_entropy(hidden, targets, weight)

    def loss(self, batch, epoch):
        loss, _ = self.loss_and_state(batch)
        return loss, {"local": loss.detach()}


class NextItemObjective(_SequenceObjective):
    """SASRec training: predict item t+1 from items 1..t at every real position.

    Parameters
    ----------
    encoder : skcreate.nn.SASRecEncoder
    sequences : numpy.ndarray of int, shape (n_users, max_len + 1)
        Left-padded item codes + 1 (``Interactions.last_items(max_len + 1)``).
    batch_size : int
    rng : numpy.random.Generator
        Shuffles users.
    loss : {"ce", "sce"}
    sce_params : dict, optional
        Keyword arguments of :func:`~skcreate.nn.losses.scalable_cross_entropy`.
    generator : torch.Generator, optional
        Random projections of SCE.
    """

    def loss_and_state(self, batch):
        """Local loss of a batch of user rows and each user's state at its last position."""
        items = trim_padding(self.sequences[batch]).to(self.device)
        inputs, targets = items[:, :-1], items[:, 1:]
        hidden = self.encoder(inputs)
        real = inputs != 0
        loss = self._item_loss(hidden[real], targets[real] - 1)
        return loss, hidden[:, -1]


class MaskedItemObjective(_SequenceObjective):
    """BERT4Rec training: recover randomly masked items from both sides.

    The last item is masked with probability ``last_mask_prob`` besides the random masks, which
    matches inference, where a [MASK] token is appended after the history.

    Parameters
    ----------
    encoder : skcreate.nn.SASRecEncoder
        Bidirectional (``causal=False``) with one extra token row, the [MASK].
    sequences : numpy.ndarray of int, shape (n_users, max_len)
        Left-padded item codes + 1.
    batch_size : int
    rng : numpy.random.Generator
    mask_prob : float
        Share of items masked.
    loss, sce_params, generator
        As in :class:`NextItemObjective`.
    """

    def __init__(self, encoder, sequences, batch_size, rng, mask_prob=0.2, last_mask_prob=0.5,
                 **kwargs):
        super().__init__(encoder, sequences, batch_size, rng, **kwargs)
        self.mask_prob = mask_prob
        self.last_mask_prob = last_mask_prob
        self.mask_token = encoder.n_items + 1

    def loss_and_state(self, batch):
        items = trim_padding(self.sequences[batch]).to(self.device)
        real = items != 0
        draw = torch.as_tensor(self.rng.random(items.shape), device=self.device)
        masked = real & (draw < self.mask_prob)
        last = torch.as_tensor(self.rng.random(len(items)) < self.last_mask_prob,
                               device=self.device)
        masked[:, -1] |= last
        # every sequence trains on at least one position
        masked[:, -1] |= ~masked.any(1)
        hidden = self.encoder(items.masked_fill(masked, self.mask_token))
        loss = self._item_loss(hidden[masked], items[masked] - 1)
        return loss, hidden[:, -1]


class GraphObjective:
    """Graph training on (user, positive item) edges with sampled negatives.

    Parameters
    ----------
    encoder : skcreate.nn.LightGCNEncoder or skcreate.nn.UltraGCNEncoder
    adjacency : torch.Tensor
        Normalised sparse adjacency (LightGCN); ignored by UltraGCN.
    edges : tuple of numpy.ndarray
        (user codes, item codes) of the training graph.
    batch_size : int
        Edges per step.
    rng : numpy.random.Generator
        Shuffles edges and samples negatives.
    regularization : float
        L2 on the layer-0 rows of the batch (LightGCN) or on the batch's embeddings (UltraGCN).
    n_negatives : int
        Negatives per positive (UltraGCN; LightGCN's BPR uses one).
    generator : torch.Generator, optional
        Edge dropout.
    """

    def __init__(self, encoder, adjacency, edges, batch_size, rng, regularization=1e-4,
                 n_negatives=1, generator=None):
        self.encoder = encoder
        self.adjacency = adjacency
        self.users, self.items = (np.asarray(a) for a in edges)
        self.batch_size = batch_size
        self.rng = rng
        self.regularization = regularization
        self.n_negatives = n_negatives
        self.generator = generator
        self.ultra = hasattr(encoder, "beta")

    @property
    def device(self):
        return self.encoder.user_embedding.weight.device

    def batches(self, epoch):
        return _chunks(self.rng.permutation(len(self.users)), self.batch_size)

    def propagate(self):
        """(users, items) embeddings of the graph branch for this step."""
        return self.encoder(self.adjacency, self.generator)

    def loss(self, batch, epoch):
        loss = self.edge_loss(batch, self.propagate())
        return loss, {"global": loss.detach()}

    def edge_loss(self, batch, embeddings):
        """Graph loss of the edges ``batch`` given this step's propagated embeddings."""
        users = torch.as_tensor(self.users[batch], device=self.device)
        positives = torch.as_tensor(self.items[batch], device=self.device)
        shape = (len(batch), self.n_negatives) if self.ultra else len(batch)
        negatives = torch.as_tensor(self.rng.integers(0, self.encoder.n_items, shape),
                                    device=self.device)
        layer0_users = self.encoder.user_embedding(users)
        layer0_items = self.encoder.item_embedding.weight[1:]
        if self.ultra:
            loss = self.encoder.loss(users, positives, negatives)
            penalty = layer0_users.pow(2).sum() + layer0_items[positives].pow(2).sum()
        else:
            user_emb, item_emb = embeddings
            loss = bpr_loss(user_emb[users], item_emb[positives], item_emb[negatives])
            penalty = (layer0_users.pow(2).sum() + layer0_items[positives].pow(2).sum()
                       + layer0_items[negatives].pow(2).sum())
        return loss + self.regularization * penalty / (2 * len(batch))


class JointObjective:
    """CREATE: ``L_local + graph_weight * L_global + alignment_weight * L_align``.

    During the first ``warmup_epochs`` epochs only the graph term is optimised (over edge
    batches, as in standalone graph training), so the transformer receives no gradient while the
    graph warms up the shared item table. Afterwards each step takes a batch of users for the
    sequence loss, the next batch of a cycling edge permutation for the graph loss, and aligns
    the batch users' transformer states with their graph embeddings.

    Parameters
    ----------
    sequence : NextItemObjective or MaskedItemObjective
    graph : GraphObjective
    warmup_epochs : int
    graph_weight, alignment_weight : float
    alignment : {"barlow", "contrastive", "none"}
    barlow_lambda : float
        Off-diagonal weight of the Barlow Twins loss.
    temperature : float
        InfoNCE temperature of the contrastive alignment.
    """

    def __init__(self, sequence, graph, warmup_epochs=0, graph_weight=1.0, alignment="barlow",
                 alignment_weight=1.0, barlow_lambda=5e-3, temperature=0.2):
        self.sequence = sequence
        self.graph = graph
        self.warmup_epochs = warmup_epochs
        self.graph_weight = graph_weight
        self.alignment = alignment
        self.alignment_weight = alignment_weight
        self.barlow_lambda = barlow_lambda
        self.temperature = temperature
        self._edges = self._cycle_edges()

    def _cycle_edges(self):
        while True:
            yield from self.graph.batches(None)

    def batches(self, epoch):
        if epoch < self.warmup_epochs:
            return self.graph.batches(epoch)
        return self.sequence.batches(epoch)

    def _align(self, states, users):
        if self.alignment == "barlow":
            return barlow_twins_loss(states, users, self.barlow_lambda)
        return info_nce_loss(states, users, self.temperature)

    def loss(self, batch, epoch):
        if epoch < self.warmup_epochs:
            global_loss = self.graph.edge_loss(batch, self.graph.propagate())
            return self.graph_weight * global_loss, {"global": global_loss.detach()}
        local, states = self.sequence.loss_and_state(batch)
        terms = {"local": local.detach()}
        total = local
        uses_graph = self.graph_weight > 0 or (self.alignment != "none"
                                               and self.alignment_weight > 0)
        if uses_graph:
            embeddings = self.graph.propagate()
            if self.graph_weight > 0:
                global_loss = self.graph.edge_loss(next(self._edges), embeddings)
                total = total + self.graph_weight * global_loss
                terms["global"] = global_loss.detach()
            if self.alignment != "none" and self.alignment_weight > 0 and len(batch) > 1:
                users = embeddings[0][torch.as_tensor(batch, device=states.device)]
                align = self._align(states, users)
                total = total + self.alignment_weight * align
                terms["align"] = align.detach()
        return total, terms
