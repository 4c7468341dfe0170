"""How training batches are drawn: user sequences, graph edges with negatives, and both.

Each batch source is called with the epoch index and yields batches: dicts of CPU tensors in
the layout the :mod:`skcreate.nn` step modules read (the training loop moves them to the
device). All randomness comes from one ``numpy.random.Generator``, drawn lazily step by step.
"""

import numpy as np
import torch

from .distributed import shard_rows
from .nn.item_table import ItemTable

__all__ = ["trim_padding", "SequenceBatches", "MaskedSequenceBatches", "EdgeBatches",
           "JointBatches", "KeyedBatches", "ShardedBatches"]


def trim_padding(items):
    """Drop the leading columns that are padding in every row of a left-padded batch."""
    real = (items != ItemTable.padding).any(0)
    first = int(real.int().argmax()) if bool(real.any()) else items.shape[1] - 1
    return items[:, first:]


def _chunks(order, size):
    return [order[i:i + size] for i in range(0, len(order), size)]


class SequenceBatches:
    """Batches of users for next-item training (SASRec).

    Parameters
    ----------
    sequences : numpy.ndarray of int, shape (n_users, max_len + 1)
        Left-padded item-table rows (``Interactions.last_items(max_len + 1)``).
    batch_size : int
        Users per batch.
    rng : numpy.random.Generator
        Shuffles users.

    Yields
    ------
    dict
        ``inputs`` (B, L) and ``targets`` (B, L): every position predicts the next item;
        ``users`` (B,): user codes. Users with fewer than two items have nothing to predict
        and are left out; a ValueError says so when no user is left.
    """

    def __init__(self, sequences, batch_size, rng):
        self.sequences = torch.as_tensor(sequences)
        self.batch_size = batch_size
        self.rng = rng
        self.lengths = (sequences != ItemTable.padding).sum(1)
        self.rows = np.flatnonzero(self.lengths >= 2)
        if not len(self.rows):
            raise ValueError("No user has two or more interactions: a sequence model has "
                             "nothing to learn from (each user needs an item to predict after "
                             "a history).")

    def _order(self):
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

    def collate(self, rows):
        items = trim_padding(self.sequences[rows])
        inputs = items[:, :-1]
        targets = items[:, 1:].masked_fill(inputs == ItemTable.padding, ItemTable.padding)
        return {"inputs": inputs, "targets": targets, "users": torch.as_tensor(rows)}

    def __call__(self, epoch):
        for rows in self._order():
            yield self.collate(rows)


class MaskedSequenceBatches(SequenceBatches):
    """Batches of users for masked-item training (BERT4Rec).

    Random items are replaced by the [MASK] row and must be recovered from both sides; the last
    item is masked with probability ``last_mask_prob`` besides, which matches inference, where a
    [MASK] is appended after the history.

    Parameters
    ----------
    sequences : numpy.ndarray of int, shape (n_users, max_len)
        Left-padded item-table rows.
    batch_size : int
    rng : numpy.random.Generator
        Shuffles users and draws the masks.
    mask_token : int
        Table row of [MASK].
    mask_prob : float
        Share of items masked.
    last_mask_prob : float
        Probability of masking the last item besides.
    """

    def __init__(self, sequences, batch_size, rng, mask_token, mask_prob=0.2,
                 last_mask_prob=0.5):
        super().__init__(sequences, batch_size, rng)
        self.mask_token = mask_token
        self.mask_prob = mask_prob
        self.last_mask_prob = last_mask_prob

    def collate(self, rows):
        items = trim_padding(self.sequences[rows])
        real = items != ItemTable.padding
        masked = real & torch.as_tensor(self.rng.random(items.shape) < self.mask_prob)
        masked[:, -1] |= torch.as_tensor(self.rng.random(len(items)) < self.last_mask_prob)
        # every sequence trains on at least one position
        masked[:, -1] |= ~masked.any(1)
        return {"inputs": items.masked_fill(masked, self.mask_token),
                "targets": items.masked_fill(~masked, ItemTable.padding),
                "users": torch.as_tensor(rows)}


class EdgeBatches:
    """Batches of (user, positive item) edges of the training graph with sampled negatives.

    Parameters
    ----------
    users, items : numpy.ndarray of int
        Codes of the graph's edges.
    batch_size : int
        Edges per batch.
    n_items : int
        Catalogue size: negatives are drawn uniformly from it.
    n_negatives : int
        Negatives per positive.
    rng : numpy.random.Generator
        Shuffles edges and samples negatives.

    Yields
    ------
    dict
        ``users``, ``positives`` (B,) and ``negatives`` (B, n_negatives).
    """

    def __init__(self, users, items, batch_size, n_items, n_negatives, rng):
        self.users, self.items = np.asarray(users), np.asarray(items)
        self.batch_size = batch_size
        self.n_items = n_items
        self.n_negatives = n_negatives
        self.rng = rng

    def collate(self, rows):
        """The batch of edges ``rows``, with freshly drawn negatives."""
        negatives = self.rng.integers(0, self.n_items, (len(rows), self.n_negatives))
        return {"users": torch.as_tensor(self.users[rows]),
                "positives": torch.as_tensor(self.items[rows]),
                "negatives": torch.as_tensor(negatives)}

    def __call__(self, epoch=None):
        for rows in _chunks(self.rng.permutation(len(self.users)), self.batch_size):
            yield self.collate(rows)


class JointBatches:
    """CREATE's joint batches: a batch of users and, when the graph loss is on, an edge batch.

    The edges cycle through their own permutation, independently of the user epochs: an
    epoch of users continues the pass over the edges where the previous one left it. That
    position is the state a resumed run needs (:meth:`state_dict`).

    Parameters
    ----------
    sequences : SequenceBatches
    edges : EdgeBatches, optional
        None when the graph loss is off (then only the alignment reads the graph).
    alignment_users : int, default=0
        Users drawn at random (with replacement) besides each batch's, for the alignment only:
        their sequences come as ``batch["align"]``, in the layout of ``batch["sequence"]``.
    """

    def __init__(self, sequences, edges=None, alignment_users=0):
        self.sequences = sequences
        self.edges = edges
        self.alignment_users = alignment_users
        self._order = np.empty(0, dtype=np.int64)
        self._offset = 0

    def _next_edges(self):
        if self._offset >= len(self._order):
            # a new pass is drawn when its first batch is, as a lazy stream of passes would
            self._order, self._offset = self.edges.rng.permutation(len(self.edges.users)), 0
        rows = self._order[self._offset:self._offset + self.edges.batch_size]
        self._offset += len(rows)
        return self.edges.collate(rows)

    def __call__(self, epoch):
        rows = self.sequences.rows
        for batch in self.sequences(epoch):
            joint = {"sequence": batch}
            if self.edges is not None:
                joint["edges"] = self._next_edges()
            if self.alignment_users:
                extra = rows[self.sequences.rng.integers(0, len(rows), self.alignment_users)]
                joint["align"] = self.sequences.collate(extra)
            yield joint

    def state_dict(self):
        """The current pass over the edges and the position in it."""
        return {"order": torch.as_tensor(self._order), "offset": self._offset}

    def load_state_dict(self, state):
        self._order, self._offset = state["order"].numpy(), int(state["offset"])


class KeyedBatches:
    """Each batch of ``source`` under ``key``: one part's batches fed to a joint model.

    CREATE's warm-up feeds ``{"edges": edge_batch}`` to the joint network.
    """

    def __init__(self, source, key):
        self.source = source
        self.key = key

    def __call__(self, epoch):
        for batch in self.source(epoch):
            yield {self.key: batch}


def _user_batch(batch):
    """The batch of users (sequences) inside ``batch``, or None for edges only."""
    if "inputs" in batch:
        return batch
    return batch.get("sequence")


def _concat(first, second):
    """Two batches of the same layout as one; sequence widths are aligned by left padding."""
    if isinstance(first, dict):
        return {key: _concat(first[key], second[key]) for key in first}
    if first.dim() == 2 and first.shape[1] != second.shape[1]:
        width = max(first.shape[1], second.shape[1])
        first, second = (torch.nn.functional.pad(part, (width - part.shape[1], 0),
                                                 value=ItemTable.padding)
                         for part in (first, second))
    return torch.cat([first, second])


class ShardedBatches:
    """One rank's share of every batch of ``source``, for data-parallel training.

    Every rank draws the same global batches (the sources share the seed, so the per-epoch
    reshuffle is the same everywhere) and keeps the rows
    :func:`~skcreate.distributed.shard_rows` gives it: each example trains once per epoch, on
    one rank, with no padding duplicates. A shard's loss terms are means over its own examples;
    the ``shard_weight`` it carries, ``world_size * shard units / batch units``, rescales them
    so that DistributedDataParallel's mean of the ranks' gradients equals the gradient of the
    global batch's mean (units are the positions with a target in a user batch, the edges in an
    edge batch). A global batch therefore trains as in one process with the same
    ``batch_size``.

    Two corner cases keep every rank's step defined: an edge batch with fewer edges than ranks
    (the end of a pass) goes whole to every rank, unweighted; a user batch with fewer than
    ``2 * world_size`` users (the last chunk of an epoch) joins a neighbouring batch, so that
    every shard holds the two users a batch standardisation needs.

    Parameters
    ----------
    source : callable
        ``source(epoch)`` yields global batches (any source of this module).
    rank, world_size : int
    """

    def __init__(self, source, rank, world_size):
        self.source = source
        self.rank = rank
        self.world_size = world_size

    def _rows(self, batch):
        users = _user_batch(batch)
        return len(users["inputs"]) if users is not None else float("inf")

    def _shard(self, batch):
        if any(isinstance(value, dict) for value in batch.values()):
            return {key: self._shard(value) for key, value in batch.items()}
        n = len(next(iter(batch.values())))
        if n < self.world_size:
            return dict(batch)
        rows = torch.as_tensor(shard_rows(n, self.rank, self.world_size))
        shard = {key: value[rows] for key, value in batch.items()}
        if "targets" in batch:
            real = (shard["inputs"] != ItemTable.padding).any(0)
            first = int(real.int().argmax())
            shard["inputs"], shard["targets"] = (shard[key][:, first:]
                                                 for key in ("inputs", "targets"))
            units = int((shard["targets"] != ItemTable.padding).sum())
            total = int((batch["targets"] != ItemTable.padding).sum())
        else:
            units, total = len(rows), n
        shard["shard_weight"] = torch.tensor(self.world_size * units / total)
        return shard

    def __call__(self, epoch):
        held = None
        for batch in self.source(epoch):
            if held is not None and min(self._rows(held), self._rows(batch)) \
                    < 2 * self.world_size:
                held = _concat(held, batch)
                continue
            if held is not None:
                yield self._shard(held)
            held = batch
        if held is not None:
            if self._rows(held) < 2 * self.world_size:
                raise ValueError(f"an epoch of {self._rows(held)} training user(s) cannot be "
                                 f"shared by {self.world_size} processes (at least two users "
                                 "each); train in one process (distributed=False).")
            yield self._shard(held)
