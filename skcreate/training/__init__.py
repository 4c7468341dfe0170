"""Training: the loop every neural estimator shares (:func:`train`, run by stages of a plan)
and the :class:`Trainer` that runs a fit (device, early stopping, checkpoints, precision, data
parallelism, callbacks)."""

from .loop import Callback, EpochRecord, Stage, TrainingResult, train
from .trainer import Trainer, resolve_device

__all__ = ["Callback", "EpochRecord", "Stage", "TrainingResult", "train", "Trainer",
           "resolve_device"]
