"""Barlow Twins after the BT-SR recipe: normalised views, a projector, a per-dimension loss."""

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval
from torch import nn
from torch.nn import functional as F

from .alignment import Alignment
from .losses import barlow_twins_loss

__all__ = ["ProjectedBarlowTwins"]


class ProjectedBarlowTwins(Alignment):
    """Barlow Twins on projected views, as BT-SR applies it to sequential recommendation.

    Each view is L2-normalised, passed through one shared two-layer projector (linear, ReLU,
    linear), standardised over the batch, and the Barlow Twins loss is divided by the
    projector's width, so that it starts near 1 whatever the width (the plain
    :class:`~skcreate.nn.BarlowTwins` starts near ``d``): BT-SR's coefficient of about 0.25
    plays the part of ``alignment_weight``.

    Parameters
    ----------
    barlow_lambda : float, default=5e-3
        Off-diagonal weight.
    projector_dim : int, default=64
        Width of both projector layers.
    positions, graph_view, stop_gradient
        What is aligned, as in :class:`~skcreate.nn.Alignment`.

    Examples
    --------
    >>> import torch
    >>> alignment = ProjectedBarlowTwins(projector_dim=8).build(4)
    >>> alignment(torch.randn(16, 4), torch.randn(16, 4)).shape
    torch.Size([])
    """

    _parameter_constraints = {**Alignment._parameter_constraints,
                              "barlow_lambda": [Interval(Real, 0, None, closed="left")],
                              "projector_dim": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, barlow_lambda=5e-3, projector_dim=64, positions="last",
                 graph_view="propagated", stop_gradient=None):
        super().__init__(positions, graph_view, stop_gradient)
        self.barlow_lambda = barlow_lambda
        self.projector_dim = projector_dim

    def build(self, width):
        self.projector = nn.Sequential(nn.Linear(width, self.projector_dim), nn.ReLU(),
                                       nn.Linear(self.projector_dim, self.projector_dim))
        return self

    def forward(self, sequence_states, graph_users):
        a = self.projector(F.normalize(sequence_states, dim=-1))
        b = self.projector(F.normalize(graph_users, dim=-1))
        return barlow_twins_loss(a, b, self.barlow_lambda) / self.projector_dim
