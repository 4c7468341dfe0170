"""Resumable training: the whole training state in one file, written atomically.

A :class:`Checkpoint` given to :func:`skcreate.training.train` writes, every ``every`` epochs,
everything the rest of the run depends on: the weights, the optimiser's state, the kept best
weights and the curves so far, the position in the training plan, every random stream (the
global torch generator, the ``torch.Generator`` objects of the module and its losses, the
batch sources' numpy generator) and the state of batch sources that carry one across epochs.
A run that finds the file resumes after the epoch it records and ends exactly where an
uninterrupted run would. The file is written to a temporary name and renamed over the old
one, so a process killed while writing leaves the previous checkpoint intact. It is read with
``torch.load(weights_only=True)``: no pickled code.
"""

import os
import tempfile

import torch
from torch import nn

__all__ = ["Checkpoint", "CheckpointError"]

_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint file that belongs to another run, or cannot be read."""


def _generators(module):
    """The torch.Generator objects a module's steps draw from, in a fixed order.

    They sit on submodules (edge dropout) or on plain loss objects held by a submodule (the
    scalable cross-entropy's projections).
    """
    found = []
    for sub in module.modules():
        for value in vars(sub).values():
            candidates = [value]
            if not isinstance(value, (nn.Module, torch.Tensor)) and hasattr(value, "__dict__"):
                candidates = list(vars(value).values())
            found.extend(v for v in candidates
                         if isinstance(v, torch.Generator) and all(v is not f for f in found))
    return found


def _device(module):
    return next((p.device for p in module.parameters()), torch.device("cpu"))


class Checkpoint:
    """Where and how often :func:`~skcreate.training.train` saves its state to resume from.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file. Its folder must exist.
    every : int, default=1
        Epochs between writes.
    fingerprint : str, default=""
        Identifies the run (parameters and data); a file with another fingerprint is refused
        rather than resumed into a different fit.
    rngs : sequence of numpy.random.Generator, default=()
        Generators outside the module whose state the rest of the run depends on (the batch
        sources' generator).
    extra : dict, default=None
        Plain values saved with every write and returned by :meth:`load` (an estimator keeps
        its seed there).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "fit.ckpt")
    >>> Checkpoint(path, every=5).exists()
    False
    """

    def __init__(self, path, every=1, fingerprint="", rngs=(), extra=None):
        self.path = os.fspath(path)
        self.every = every
        self.fingerprint = fingerprint
        self.rngs = list(rngs)
        self.extra = {} if extra is None else extra
        self._loaded = None

    def exists(self):
        return os.path.exists(self.path)

    def due(self, epochs_done):
        return epochs_done % self.every == 0

    def capture(self, module, optimiser, batch_sources):
        """The random streams, weights, optimiser and batch-source state as saveable values."""
        state = {
            "module": module.state_dict(),
            "optimizer": optimiser.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generators": [g.get_state() for g in _generators(module)],
            "numpy_rngs": [rng.bit_generator.state for rng in self.rngs],
            "batches": [source.state_dict() if hasattr(source, "state_dict") else None
                        for source in batch_sources],
        }
        device = _device(module)
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(device)
        return state

    def restore(self, state, module, optimiser, batch_sources):
        """Put captured state back in place (the inverse of :meth:`capture`)."""
        module.load_state_dict(state["module"])
        optimiser.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        generators = _generators(module)
        if len(generators) != len(state["generators"]):
            raise CheckpointError(f"the checkpoint at {self.path!r} holds "
                                  f"{len(state['generators'])} random generators, the model "
                                  f"{len(generators)}.")
        for generator, saved in zip(generators, state["generators"]):
            generator.set_state(saved)
        for rng, saved in zip(self.rngs, state["numpy_rngs"]):
            rng.bit_generator.state = saved
        for source, saved in zip(batch_sources, state["batches"]):
            if saved is not None:
                source.load_state_dict(saved)
        if "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], _device(module))
        self._loaded = None

    def save(self, state):
        """Write ``state`` (a dict of tensors and plain values) atomically."""
        folder = os.path.dirname(os.path.abspath(self.path))
        handle, temporary = tempfile.mkstemp(prefix=".skcreate-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save({"format": _FORMAT, "fingerprint": self.fingerprint, **self.extra,
                            **state}, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise

    def load(self):
        """The saved state; a CheckpointError if it is unreadable or from another run.

        The file is read once: later calls return the same state until :meth:`restore`.
        """
        if self._loaded is not None:
            return self._loaded
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"cannot read the checkpoint at {self.path!r} ({exc}); "
                                  "delete it to train from the start.") from None
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise CheckpointError(f"{self.path!r} is not a skcreate checkpoint of format "
                                  f"{_FORMAT}.")
        if state["fingerprint"] != self.fingerprint:
            raise CheckpointError(
                f"the checkpoint at {self.path!r} was written by a fit with other parameters "
                "or data; delete it or choose another checkpoint_path to train from the start.")
        self._loaded = state
        return state

    def remove(self):
        if self.exists():
            os.remove(self.path)

