"""Cross-view alignment of the transformer's user states with the graph's user embeddings."""

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

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

    Parameters
    ----------
    positions : {"last", "all"}, default="last"
        Which transformer states are aligned: each user's state at the last position (the
        paper's, the state that serves), or the state at every real position, each paired
        with its user's graph embedding (the authors' earlier joint model).
    graph_view : {"propagated", "layer0"}, default="propagated"
        The graph side: the user's propagated embedding, or its layer-0 row (then the
        alignment needs no propagation).
    stop_gradient : {None, "sequence", "graph"}, default=None
        Side that the alignment does not train: None trains both; ``"graph"`` treats the
        graph embedding as a fixed target for the transformer, ``"sequence"`` the reverse.

    A subclass whose constructor takes ``**kwargs`` and passes them here has these three
    parameters too (tunable as ``alignment__positions``...); one that calls
    ``super().__init__()`` keeps their defaults.
    """

    _parameter_constraints = {
        "positions": [StrOptions({"last", "all"})],
        "graph_view": [StrOptions({"propagated", "layer0"})],
        "stop_gradient": [None, StrOptions({"sequence", "graph"})],
    }

    def __init__(self, positions="last", graph_view="propagated", stop_gradient=None):
        super().__init__()
        self.positions = positions
        self.graph_view = graph_view
        self.stop_gradient = stop_gradient

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
    positions, graph_view, stop_gradient
        What is aligned, as in :class:`Alignment`.
    """

    _parameter_constraints = {**Alignment._parameter_constraints,
                              "barlow_lambda": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, barlow_lambda=5e-3, positions="last", graph_view="propagated",
                 stop_gradient=None):
        super().__init__(positions, graph_view, stop_gradient)
        self.barlow_lambda = barlow_lambda

    def forward(self, sequence_states, graph_users):
        return barlow_twins_loss(sequence_states, graph_users, self.barlow_lambda)


class InfoNCE(Alignment):
    """Symmetric InfoNCE with in-batch negatives (the "contrastive" alignment).

    Parameters
    ----------
    temperature : float, default=0.2
        Softmax temperature over cosine similarities.
    positions, graph_view, stop_gradient
        What is aligned, as in :class:`Alignment`.
    """

    _parameter_constraints = {**Alignment._parameter_constraints,
                              "temperature": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, temperature=0.2, positions="last", graph_view="propagated",
                 stop_gradient=None):
        super().__init__(positions, graph_view, stop_gradient)
        self.temperature = temperature

    def forward(self, sequence_states, graph_users):
        return info_nce_loss(sequence_states, graph_users, self.temperature)
