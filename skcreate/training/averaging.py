"""Tail averaging: a network's weights as the mean over the ends of its last epochs.

An update (``partial_fit``) trains for a few epochs on a small share of the data at the fit's
learning rate, so where its last step lands varies with the seed as much as settings do. The
mean of the weights at the ends of the last epochs (stochastic weight averaging's estimate at
a constant rate, Izmailov et al. 2018) sits nearer the middle of the region those steps
explore.
"""

import torch

from .loop import Callback

__all__ = ["TailAverage"]


class TailAverage(Callback):
    """Running mean of a module's parameters at the ends of a stage's last epochs.

    Pass it to :func:`~skcreate.training.train` among the callbacks, then call :meth:`apply`:
    the parameters become the mean of their values at the ends of the last ``last`` of the
    stage's ``epochs`` epochs. Buffers (a graph's adjacency, cached embeddings) are left as
    they are; an interrupted run averages the epochs it finished. The mean is one copy of the
    parameters, on their device, updated once an epoch.

    Parameters
    ----------
    module : torch.nn.Module
    stage : str
        Name of the stage whose epochs are averaged (:class:`~skcreate.training.Stage`).
    epochs : int
        Epochs the stage runs.
    last : int
        How many of its last epochs to average, 1 to ``epochs``; 1 keeps the last weights.

    Examples
    --------
    >>> import torch
    >>> from skcreate.training import EpochRecord
    >>> from skcreate.training.averaging import TailAverage
    >>> layer = torch.nn.Linear(1, 1, bias=False)
    >>> average = TailAverage(layer, "joint", epochs=3, last=2)
    >>> for epoch, value in enumerate([1.0, 2.0, 4.0], start=1):
    ...     _ = layer.weight.data.fill_(value)
    ...     average.on_epoch_end(EpochRecord(epoch, "joint", 0.0, 0.0, {}))
    >>> average.apply()
    >>> layer.weight.item()
    3.0
    """

    def __init__(self, module, stage, epochs, last):
        if not 1 <= last <= epochs:
            raise ValueError(f"last must be in [1, epochs={epochs}], got {last}.")
        self.parameters = list(module.parameters())
        self.stage, self.first = stage, epochs - last + 1
        self.seen, self.count, self.means = 0, 0, None

    def on_epoch_end(self, record):
        if record.stage != self.stage:
            return
        self.seen += 1
        if self.seen < self.first:
            return
        self.count += 1
        with torch.no_grad():
            if self.means is None:
                self.means = [param.detach().clone() for param in self.parameters]
            else:
                for mean, param in zip(self.means, self.parameters):
                    mean.lerp_(param, 1 / self.count)

    def apply(self):
        """Put the mean in the module's parameters (nothing when no epoch was averaged)."""
        if self.means is None:
            return
        with torch.no_grad():
            for param, mean in zip(self.parameters, self.means):
                param.copy_(mean)
