"""Resumable training: the whole training state in one file, written atomically.

A :class:`Checkpoint` given to :func:`skcreate.training.train` writes, every ``every`` epochs,
everything the rest of the run depends on: the weights, the optimiser's state, the kept best
weights and the curves so far, the position in the training plan, every random stream (the
global torch generator, the ``torch.Generator`` objects of the module and its losses, the
batch sources' numpy generator) and the state of batch sources that carry one across epochs.
A run that finds the file resumes after the epoch it records and ends exactly where an
uninterrupted run would. The file is written to a temporary name and renamed over the old
one, so a process killed while writing leaves the previous checkpoint intact (and the next fit
to take the checkpoint's lock removes the partial file it left). It is read with
``torch.load(weights_only=True)``: no pickled code.

The file ends with a line ``skcreate-sha256:`` followed by the SHA-256 of what precedes it in
64 hex digits, checked before anything is read: a damaged file (a flipped bit that the zip
container does not notice) is refused with a :class:`CheckpointError` rather than resumed
into a different model. While a fit uses a checkpoint it holds a lock file beside it (the path with
``.lock`` appended, holding the fit's process id and host), so that two live fits, such as
clones in a parallel search, never write one file; a lock left by a process that died is
taken over.
"""

import contextlib
import glob
import hashlib
import io
import os
import socket
import tempfile

import torch
from torch import nn

__all__ = ["Checkpoint", "CheckpointError"]

_FORMAT = 2
# what ends every checkpoint file: this marker, then the payload's SHA-256 in hex
_CHECKSUM = b"\nskcreate-sha256:"
_CHECKSUM_SIZE = len(_CHECKSUM) + 64


class CheckpointError(ValueError):
    """A checkpoint file that belongs to another run, is damaged or in use by another fit."""


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # another user's live process
        return True
    return True


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
        buffer = io.BytesIO()
        torch.save({"format": _FORMAT, "fingerprint": self.fingerprint, **self.extra, **state},
                   buffer)
        payload = buffer.getbuffer()
        handle, temporary = tempfile.mkstemp(prefix=self._temporary_prefix(), suffix=".tmp",
                                             dir=folder)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(payload)
                file.write(_CHECKSUM + hashlib.sha256(payload).hexdigest().encode())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise

    def _temporary_prefix(self):
        """Start of the names :meth:`save` writes to before renaming: this checkpoint's own,
        so that a lock holder can tell them from another checkpoint's in the same folder."""
        return f".{os.path.basename(self.path)}.skcreate-"

    def _leftover_temporaries(self):
        """Files a killed :meth:`save` of this checkpoint left (mkstemp adds 8 characters)."""
        folder = os.path.dirname(os.path.abspath(self.path))
        pattern = glob.escape(self._temporary_prefix()) + "?" * 8 + ".tmp"
        return glob.glob(os.path.join(glob.escape(folder), pattern))

    def load(self):
        """The saved state; a CheckpointError if it is unreadable or from another run.

        The file is read once: later calls return the same state until :meth:`restore`.
        """
        if self._loaded is not None:
            return self._loaded
        with open(self.path, "rb") as file:
            content = file.read()
        payload, trailer = content[:-_CHECKSUM_SIZE], content[-_CHECKSUM_SIZE:]
        if not trailer.startswith(_CHECKSUM):
            raise CheckpointError(f"the checkpoint at {self.path!r} has no checksum (truncated, "
                                  "or not a skcreate checkpoint of format "
                                  f"{_FORMAT}); delete it to train from the start.")
        if hashlib.sha256(payload).hexdigest().encode() != trailer[len(_CHECKSUM):]:
            raise CheckpointError(f"the checkpoint at {self.path!r} is damaged (its SHA-256 "
                                  "does not match its content); delete it to train from the "
                                  "start.")
        try:
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
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

    @contextlib.contextmanager
    def lock(self):
        """Hold the checkpoint for one fit: a CheckpointError if another live fit holds it.

        The lock file (``path + ".lock"``) is created exclusively, holds this process's id and
        host, and is removed on exit. One left by a dead process of this host is taken over.
        Partial files of this checkpoint that a killed write left (as large as the checkpoint)
        are removed once the lock is held: no live fit can be writing them then.
        """
        path = self.path + ".lock"
        owner = f"{os.getpid()} {socket.gethostname()}"
        for attempt in range(2):
            try:
                handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                holder = _read_holder(path)
                if attempt == 0 and holder is not None and _stale(*holder):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(path)
                    continue
                pid, host = holder or ("unknown", "unknown")
                raise CheckpointError(
                    f"checkpoint_path={self.path!r} is in use by another fit (process {pid} on "
                    f"{host}; lock file {path!r}). Clones in a search (GridSearchCV, "
                    "cross_validate, n_jobs > 1) share their checkpoint_path: give each "
                    "candidate its own path, or none. Delete the lock file if no fit is "
                    "running.") from None
        with os.fdopen(handle, "w") as file:
            file.write(owner)
        for leftover in self._leftover_temporaries():
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)
        try:
            yield self
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def _read_holder(path):
    """(pid, host) written in a lock file; None when unreadable (being written)."""
    try:
        with open(path) as file:
            pid, host = file.read().split(" ", 1)
        return int(pid), host
    except (OSError, ValueError):
        return None


def _stale(pid, host):
    """Whether the fit that wrote a lock is gone; only this host's processes can be checked."""
    return host == socket.gethostname() and not _process_alive(pid)

