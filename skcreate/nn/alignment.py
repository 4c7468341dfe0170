"""Cross-view alignment of the transformer's user states with the graph's user embeddings."""

from .component import Component
from .losses import barlow_twins_loss, info_nce_loss

__all__ = ["Alignment", "BarlowTwins", "InfoNCE"]


class Alignment(Component):
    """Base of alignment losses: ``alignment(sequence_states, graph_users) -> scalar``.

    Both arguments have shape (N, d): row ``n`` is a transformer state and the graph embedding
    of the same user (one row per user of the batch, or one per position; see
    :class:`~skcreate.nn.CREATEModel`). A subclass implements :meth:`forward`; it may own
    weights (a projector), created in :meth:`build` once the width is known, which then train
    with the rest of the model. Pass an instance as
    ``CREATERecommender(alignment=...)``; its constructor parameters are reachable as
    ``alignment__<name>`` in ``set_params`` and ``GridSearchCV`` grids.

    In data-parallel training the rows are those of the whole global batch, gathered from
    every rank before the alignment sees them: a loss over batch statistics or in-batch
    negatives computes exactly what it would in one process.
    """

    def build(self, width):
        """Create any weights for views of width ``width``; returns self."""
        return self

    def forward(self, sequence_states, graph_users):
        raise NotImplementedError


class BarlowTwins(Alignment):
    """Barlow Twins redundancy reduction (the CREATE paper's alignment).

    Parameters
    ----------
    barlow_lambda : float, default=5e-3
        Weight of the off-diagonal (redundancy) term; see
        :func:`~skcreate.nn.losses.barlow_twins_loss`.
    """

    def __init__(self, barlow_lambda=5e-3):
        super().__init__()
        self.barlow_lambda = barlow_lambda

    def forward(self, sequence_states, graph_users):
        return barlow_twins_loss(sequence_states, graph_users, self.barlow_lambda)


class InfoNCE(Alignment):
    """Symmetric InfoNCE with in-batch negatives (the "contrastive" alignment).

    Parameters
    ----------
    temperature : float, default=0.2
        Softmax temperature over cosine similarities.
    """

    def __init__(self, temperature=0.2):
        super().__init__()
        self.temperature = temperature

    def forward(self, sequence_states, graph_users):
        return info_nce_loss(sequence_states, graph_users, self.temperature)
