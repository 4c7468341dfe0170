"""How training batches are drawn: user sequences, graph edges with negatives, and both.

A batch is a typed object (:class:`SequenceBatch`, :class:`EdgeBatch`, :class:`JointBatch`) of
CPU tensors that the :mod:`skcreate.nn` step modules read by attribute; it moves itself to the
device and, in data-parallel training, carries what sharding adds (the shard's loss weight,
the gathering of rows over ranks), so the networks know nothing of either. Each batch source
is called with the epoch index and yields batches. All randomness comes from one
``numpy.random.Generator``, drawn lazily step by step.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from .distributed import gather_rows, shard_rows
from ..nn.item_table import ItemTable

__all__ = ["SequenceBatch", "EdgeBatch", "JointBatch", "to_device", "trim_padding",
           "SequenceBatches", "MaskedSequenceBatches", "EdgeBatches", "JointBatches",
           "KeyedBatches", "ShardedBatches"]


def trim_padding(items):
    """Drop the leading columns that are padding in every row of a left-padded batch."""
    real = (items != ItemTable.padding).any(0)
    first = int(real.int().argmax()) if bool(real.any()) else items.shape[1] - 1
    return items[:, first:]


def _identity(rows):
    return rows


def to_device(value, device):
    """``value`` on ``device``: a tensor, a batch of this module, or a dict of them."""
    if isinstance(value, dict):
        return {key: to_device(item, device) for key, item in value.items()}
    if isinstance(value, torch.Tensor):
        if device.type == "cuda":
            # a copy from pinned memory runs asynchronously: the next batch is built meanwhile
            value = value.pin_memory()
        return value.to(device, non_blocking=True)
    return value.to(device)


@dataclasses.dataclass
class _Batch:
    """Tensor fields that move to a device together."""

    def to(self, device):
        """This batch on ``device``."""
        return dataclasses.replace(self, **{
            field.name: to_device(getattr(self, field.name), device)
            for field in dataclasses.fields(self)
            if isinstance(getattr(self, field.name), (torch.Tensor, _Batch))})

    def weigh(self, terms):
        """The step's loss terms, times the shard's weight in data-parallel training."""
        if getattr(self, "shard_weight", None) is None:
            return terms
        return {name: value * self.shard_weight for name, value in terms.items()}


@dataclasses.dataclass
class SequenceBatch(_Batch):
    """Users' left-padded sequences, as :class:`~skcreate.nn.SequenceModel` reads them.

    Attributes
    ----------
    inputs, targets : torch.Tensor of int64, shape (B, L)
        Item-table rows the encoder reads, and the row to predict at each position (padding
        where there is nothing to predict).
    users : torch.Tensor of int64, shape (B,)
        The users' codes.
    shard_weight : torch.Tensor, optional
        In data-parallel training, the factor that turns this shard's mean loss into its share
        of the global batch's (set by :class:`ShardedBatches`; the training loop applies it).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    users: torch.Tensor
    shard_weight: torch.Tensor = None

    def __len__(self):
        return len(self.users)

    @property
    def units(self):
        """Positions with a target: what the local loss averages over."""
        return int((self.targets != ItemTable.padding).sum())

    def rows(self, rows):
        """The batch of users ``rows`` (positions), padding columns trimmed."""
        inputs, targets = self.inputs[rows], self.targets[rows]
        real = (inputs != ItemTable.padding).any(0)
        first = int(real.int().argmax())
        return SequenceBatch(inputs[:, first:], targets[:, first:], self.users[rows])

    def concat(self, other):
        """Both batches as one; the narrower is left-padded to the wider's width."""
        width = max(self.inputs.shape[1], other.inputs.shape[1])

        def pad(part):
            return torch.nn.functional.pad(part, (width - part.shape[1], 0),
                                           value=ItemTable.padding)

        return SequenceBatch(torch.cat([pad(self.inputs), pad(other.inputs)]),
                             torch.cat([pad(self.targets), pad(other.targets)]),
                             torch.cat([self.users, other.users]))


@dataclasses.dataclass
class EdgeBatch(_Batch):
    """Edges of the training graph with sampled negatives, as
    :class:`~skcreate.nn.GraphModel` reads them.

    Attributes
    ----------
    users, positives : torch.Tensor of int64, shape (B,)
    negatives : torch.Tensor of int64, shape (B, n_negatives)
    shard_weight : torch.Tensor, optional
        As in :class:`SequenceBatch`.
    """

    users: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor
    shard_weight: torch.Tensor = None

    def __len__(self):
        return len(self.users)

    @property
    def units(self):
        return len(self.users)

    def rows(self, rows):
        return EdgeBatch(self.users[rows], self.positives[rows], self.negatives[rows])

    def concat(self, other):
        return EdgeBatch(*(torch.cat([getattr(self, name), getattr(other, name)])
                           for name in ("users", "positives", "negatives")))


@dataclasses.dataclass
class JointBatch(_Batch):
    """CREATE's step: a batch of users, an edge batch, or both, as
    :class:`~skcreate.nn.CREATEModel` reads them.

    Attributes
    ----------
    sequence : SequenceBatch, optional
        Users for the local loss and the alignment.
    edges : EdgeBatch, optional
        Edges for the graph loss (alone in CREATE's warm-up).
    align : SequenceBatch, optional
        Further users for the alignment only.
    gather : callable, default=identity
        Applied to the rows the alignment compares: in data-parallel training it gathers them
        from every rank (:func:`skcreate.training.distributed.gather_rows`), so that the
        alignment sees the global batch as in one process.
    """

    sequence: SequenceBatch = None
    edges: EdgeBatch = None
    align: SequenceBatch = None
    gather: Callable = _identity

    def weigh(self, terms):
        """The step's loss terms with each shard's weight: the local term is the sequences',
        the global term the edges'; the alignment reads gathered rows and keeps its own."""
        weights = {"local": self.sequence, "global": self.edges}
        return {name: value if getattr(weights.get(name), "shard_weight", None) is None
                else value * weights[name].shard_weight for name, value in terms.items()}

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
    SequenceBatch
        Every position predicts the next item. Users with fewer than two items have nothing
        to predict and are left out; a ValueError says so when no user is left.
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
        return SequenceBatch(inputs, targets, torch.as_tensor(rows))

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
        return SequenceBatch(items.masked_fill(masked, self.mask_token),
                             items.masked_fill(~masked, ItemTable.padding), torch.as_tensor(rows))


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
    EdgeBatch
    """

    def __init__(self, users, items, batch_size, n_items, n_negatives, rng):
        self.users, self.items = np.asarray(users), np.asarray(items)
        self.batch_size = batch_size
        self.n_items = n_items
        self.n_negatives = n_negatives
        self.rng = rng

    @classmethod
    def for_encoder(cls, encoder, edges, batch_size, rng):
        """Batches of ``edges`` (user codes, item codes) with the negatives a
        :class:`~skcreate.nn.GraphEncoder` asks for, drawn from its catalogue."""
        return cls(*edges, batch_size, encoder.item_table.n_items, encoder.n_negatives, rng)

    def collate(self, rows):
        """The batch of edges ``rows``, with freshly drawn negatives."""
        negatives = self.rng.integers(0, self.n_items, (len(rows), self.n_negatives))
        return EdgeBatch(torch.as_tensor(self.users[rows]), torch.as_tensor(self.items[rows]),
                         torch.as_tensor(negatives))

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
        their sequences come as the :class:`JointBatch`'s ``align``.
    edge_batch_size : int, optional
        Edges per joint batch; by default ``edges.batch_size``.
    """

    def __init__(self, sequences, edges=None, alignment_users=0, edge_batch_size=None):
        self.sequences = sequences
        self.edges = edges
        self.alignment_users = alignment_users
        self.edge_batch_size = edge_batch_size
        self._order = np.empty(0, dtype=np.int64)
        self._offset = 0

    def _next_edges(self):
        if self._offset >= len(self._order):
            # a new pass is drawn when its first batch is, as a lazy stream of passes would
            self._order, self._offset = self.edges.rng.permutation(len(self.edges.users)), 0
        rows = self._order[self._offset:self._offset + (self.edge_batch_size
                                                        or self.edges.batch_size)]
        self._offset += len(rows)
        return self.edges.collate(rows)

    def __call__(self, epoch):
        rows = self.sequences.rows
        for batch in self.sequences(epoch):
            joint = JointBatch(sequence=batch)
            if self.edges is not None:
                joint.edges = self._next_edges()
            if self.alignment_users:
                extra = rows[self.sequences.rng.integers(0, len(rows), self.alignment_users)]
                joint.align = self.sequences.collate(extra)
            yield joint

    def state_dict(self):
        """The current pass over the edges and the position in it."""
        return {"order": torch.as_tensor(self._order), "offset": self._offset}

    def load_state_dict(self, state):
        self._order, self._offset = state["order"].numpy(), int(state["offset"])


class KeyedBatches:
    """Each batch of ``source`` as the ``key`` part of a :class:`JointBatch`: one part's
    batches fed to a joint model.

    CREATE's warm-up feeds ``JointBatch(edges=edge_batch)`` to the joint network.
    """

    def __init__(self, source, key):
        self.source = source
        self.key = key

    def __call__(self, epoch):
        for batch in self.source(epoch):
            yield JointBatch(**{self.key: batch})


def _concat(first, second):
    """Two batches of the same kind as one."""
    if isinstance(first, JointBatch):
        return JointBatch(*(None if a is None else a.concat(b) for a, b in
                            ((first.sequence, second.sequence), (first.edges, second.edges),
                             (first.align, second.align))))
    return first.concat(second)


class ShardedBatches:
    """One rank's share of every batch of ``source``, for data-parallel training.

    Every rank draws the same global batches (the sources share the seed, so the per-epoch
    reshuffle is the same everywhere) and keeps the rows
    :func:`~skcreate.training.distributed.shard_rows` gives it: each example trains once per
    epoch, on one rank, with no padding duplicates. A shard's loss terms are means over its own
    examples; the ``shard_weight`` it carries, ``world_size * shard units / batch units``,
    rescales them so that DistributedDataParallel's mean of the ranks' gradients equals the
    gradient of the global batch's mean (units are the positions with a target in a user batch,
    the edges in an edge batch). A global batch therefore trains as in one process with the same
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
        users = batch.sequence if isinstance(batch, JointBatch) else batch
        return len(users) if isinstance(users, SequenceBatch) else float("inf")

    def _shard(self, batch):
        if isinstance(batch, JointBatch):
            return JointBatch(*(None if part is None else self._shard(part)
                                for part in (batch.sequence, batch.edges, batch.align)),
                              gather=gather_rows)
        n = len(batch)
        if n < self.world_size:
            return batch
        shard = batch.rows(torch.as_tensor(shard_rows(n, self.rank, self.world_size)))
        shard.shard_weight = torch.tensor(self.world_size * shard.units / batch.units)
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
