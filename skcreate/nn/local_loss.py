"""The sequence encoder's local loss as a part: full cross-entropy, or scalable cross-entropy."""

from numbers import Integral

from sklearn.utils._param_validation import Interval

from .component import Component
from .losses import full_cross_entropy, scalable_cross_entropy

__all__ = ["LocalLoss", "FullCrossEntropy", "ScalableCrossEntropy"]


class LocalLoss(Component):
    """Base of the next-item (or masked-item) losses: ``loss(hidden, targets, item_table)``.

    ``hidden`` (P, d) holds the encoder's states at the P positions that carry a target,
    ``targets`` (P,) their item codes, ``item_table`` the shared
    :class:`~skcreate.nn.ItemTable`; the loss returns a scalar. A loss that reads a few rows of
    the table per step sets ``row_sparse = True``: the table then gets row-sparse gradients
    and lazy Adam updates (:class:`~skcreate.nn.optim.LazyAdam`), which it must read through
    ``item_table.take``.
    """

    row_sparse = False

    def build(self, generator=None):
        """Prepare for one fit; ``generator`` (a CPU ``torch.Generator``) seeds any sampling.
        Returns self."""
        return self

    def forward(self, hidden, targets, item_table):
        raise NotImplementedError


class FullCrossEntropy(LocalLoss):
    """Softmax cross-entropy over the whole catalogue (:func:`~skcreate.nn.full_cross_entropy`).

    Examples
    --------
    >>> import torch
    >>> from skcreate.nn import ItemTable
    >>> FullCrossEntropy()(torch.zeros(2, 4), torch.tensor([0, 1]), ItemTable(3, 4)).item()
    1.0986...
    """

    def forward(self, hidden, targets, item_table):
        return full_cross_entropy(hidden, targets, item_table.catalogue)


class ScalableCrossEntropy(LocalLoss):
    """Scalable cross-entropy (:func:`~skcreate.nn.scalable_cross_entropy`): the softmax over
    each position's hardest negatives only, for large catalogues.

    Rows are read through ``item_table.take``, so the table gets a row-sparse gradient: only
    the step's candidates, targets and inputs (``row_sparse``).

    Parameters
    ----------
    n_buckets, bucket_size_x : int or None, default=None
        Buckets and positions per bucket (default ``2 * sqrt(positions)``).
    bucket_size_y : int, default=256
        Candidate items per bucket.
    n_candidates : int or None, default=65536
        Items drawn at random each step among which the buckets pick their negatives (None:
        the whole catalogue). A catalogue up to this size is scored whole; above it the step's
        cost stops growing with the catalogue.
    """

    row_sparse = True

    _parameter_constraints = {
        "n_buckets": [None, Interval(Integral, 1, None, closed="left")],
        "bucket_size_x": [None, Interval(Integral, 1, None, closed="left")],
        "bucket_size_y": [Interval(Integral, 1, None, closed="left")],
        "n_candidates": [None, Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, n_buckets=None, bucket_size_x=None, bucket_size_y=256,
                 n_candidates=65536):
        super().__init__()
        self.n_buckets = n_buckets
        self.bucket_size_x = bucket_size_x
        self.bucket_size_y = bucket_size_y
        self.n_candidates = n_candidates
        self.generator = None

    def build(self, generator=None):
        # the projections and the candidate sample: a seeded fit repeats its buckets
        self.generator = generator
        return self

    def forward(self, hidden, targets, item_table):
        return scalable_cross_entropy(hidden, targets, item_table.catalogue, self.n_buckets,
                                      self.bucket_size_x, self.bucket_size_y, self.generator,
                                      self.n_candidates, item_rows=item_table.take)
