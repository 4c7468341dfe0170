"""Loading fitted recommenders saved by :func:`save` (:mod:`skcreate.estimators.saving`).

The checksums detect damage (a truncated copy, flipped bits), not tampering: whoever can edit
the file can recompute them. Safety against a crafted file comes from loading: no code from the
file runs, the estimator class must be one of skcreate's, its parameters pass the estimator's
own validation, its fitted attributes must be ones that class's ``fit`` sets (``_FITTED``) and
agree with each other, a pickled payload is refused, and sizes are checked before anything is
decompressed or allocated: the manifest may hold 64 MiB, another member 200 times its
compressed size (or 16 MiB), an array no more than its ``.npy`` member holds. Anything
malformed raises :class:`ModelFileError`, naming the file and the problem.
"""


import hashlib
import importlib
import io
import json
import math
import os
import pickle
import stat
import struct
import zipfile
import zlib

import numpy as np
import torch
from sklearn.base import clone

from ..data.interactions import Interactions
from .migration import upgrade_params
from ..estimators.saving import (_ARRAYS, _FITTED, _MANIFEST, _MANIFEST_SUM, _MEMBERS,
                                 _OPTIMIZER, _WEIGHTS, FORMAT_VERSION, ModelFileError, _Arrays,
                                 _component_classes, _part_bases, save)

__all__ = ["FORMAT_VERSION", "ModelFileError", "save", "load", "load_metadata"]

# Bounds on what a member may decompress to, checked against the zip's declared sizes before
# reading: the manifest is text of a few kB; arrays and weights deflate by a few times at most
# (float weights hardly at all), so a member larger than _MAX_RATIO times its compressed size
# (beyond a small allowance) is a zip bomb, not a model.
_MAX_MANIFEST_BYTES = 64 * 2**20
_MAX_RATIO = 200
_SMALL_MEMBER_BYTES = 16 * 2**20
_READ_CHUNK = 2**20
# errors the zip, zlib and npy readers raise on damaged input
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
                RuntimeError, NotImplementedError, ValueError, struct.error, OverflowError)


def _estimator_classes():
    # imported on first load: reading a model file's metadata needs no estimator
    from ..estimators.baselines import (PopRandomRecommender, PopularRecommender,
                                        PureSVDRecommender, RandomRecommender)
    from ..estimators.create import CREATERecommender
    from ..estimators.graph import GraphRecommender, LightGCNRecommender, UltraGCNRecommender
    from ..estimators.matrix_factorization import ALSRecommender, BPRRecommender
    from ..estimators.sequential import SASRecRecommender

    return {cls.__name__: cls for cls in (
        ALSRecommender, BPRRecommender, CREATERecommender, GraphRecommender, LightGCNRecommender,
        PopRandomRecommender, PopularRecommender, PureSVDRecommender, RandomRecommender,
        SASRecRecommender, UltraGCNRecommender)}


def _allowed(module, allowed_modules):
    return any(module == allowed or module.startswith(allowed + ".")
               for allowed in allowed_modules)


def _user_part(path, name, spec, allowed_modules):
    """The class of a user's part ``module:QualName``, imported only from an allowed module."""
    module, _, qualname = spec.partition(":")
    if not _allowed(module, allowed_modules):
        raise ModelFileError(
            f"{path}: parameter {name} is the user part {spec}; load imports a part's module "
            f"only when you allow it: skcreate.load(path, allowed_modules=[{module!r}]) if "
            "you trust that module.")
    try:
        found = importlib.import_module(module)
        for attribute in qualname.split("."):
            found = getattr(found, attribute)
    except Exception as exc:
        raise ModelFileError(f"{path}: parameter {name}: cannot import the part {spec} "
                             f"({exc!r}).") from exc
    if not (isinstance(found, type) and issubclass(found, _part_bases())):
        raise ModelFileError(f"{path}: parameter {name}: {spec} is neither a "
                             "skcreate.nn.Component nor a skcreate.training.Trainer subclass.")
    return found


def _decode_params(path, params, allowed_modules=()):
    components = _component_classes()
    out = {}
    for name, value in params.items():
        if isinstance(value, dict) and "__component__" in value:
            spec = value["__component__"]
            if isinstance(spec, str) and ":" in spec:
                cls = _user_part(path, name, spec, allowed_modules)
            else:
                cls = components.get(spec) if isinstance(spec, str) else None
            if cls is None:
                raise ValueError(f"unknown component {spec!r} for parameter {name}")
            if not _is_str_dict(value.get("params")):
                raise ValueError(f"the parameters of component {spec!r} are not a mapping")
            try:
                value = cls(**value["params"])
            except Exception as exc:
                # a user's part may raise anything on parameters it does not take
                raise ValueError(f"component {spec!r} refused its parameters ({exc!r})") \
                    from None
        out[name] = value
    return out


def _decode_interactions(arrays, spec):
    data = Interactions(arrays.get_index(spec["user_ids"]), arrays.get_index(spec["item_ids"]),
                        arrays.get(spec["indptr"]), arrays.get(spec["items"]),
                        arrays.get(spec["times"]))
    # the CSR layout every model indexes with: checked here, so that a crafted file fails
    # at load rather than as an IndexError (or a wrong answer) at recommend
    indptr, items = data.indptr, data.items
    if not (indptr.ndim == items.ndim == 1 and indptr.dtype.kind == items.dtype.kind == "i"
            and len(indptr) == data.n_users + 1 and indptr[0] == 0
            and indptr[-1] == len(items) == len(data.times) and np.all(np.diff(indptr) >= 0)
            and (len(items) == 0 or 0 <= items.min() <= items.max() < data.n_items)):
        raise ValueError("inconsistent interactions (indptr, items, times and ids)")
    return data


def _check_served(estimator):
    """The fitted attributes every model serves from agree with each other."""
    n_items = estimator.n_items_
    if not (type(n_items) is int and n_items == len(estimator.item_ids_)
            == estimator.interactions_.n_items
            and np.shape(estimator.item_popularity_) == (n_items,)
            and type(estimator.filter_seen_) is bool):
        raise ValueError("n_items_, item_ids_, interactions_, item_popularity_ and "
                         "filter_seen_ disagree")


def _check_size(path, info, compressed_size):
    """Refuse a member whose declared size is beyond what a model member can be."""
    limit = (_MAX_MANIFEST_BYTES if info.filename == _MANIFEST
             else max(_SMALL_MEMBER_BYTES, _MAX_RATIO * compressed_size))
    if info.file_size > limit:
        raise ModelFileError(f"{path}: {info.filename} declares {info.file_size} bytes from "
                             f"{compressed_size} compressed, beyond the {limit} a model file "
                             "holds; refused (a zip bomb?).")


class _ModelZip:
    """A model file opened for reading: a regular file, a zip of known members each stored
    once, with sizes checked before anything is decompressed."""

    def __init__(self, path):
        self.path = path
        # a FIFO, a device (/dev/zero) or a folder is refused before it is read: opening a FIFO
        # blocks and a device never ends
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ModelFileError(f"{path} is not a regular file; a model file is a zip archive.")
        self._file = open(path, "rb")
        try:
            # the path may have been swapped since the stat
            if not stat.S_ISREG(os.fstat(self._file.fileno()).st_mode):
                raise ModelFileError(f"{path} is not a regular file.")
            try:
                self._archive = zipfile.ZipFile(self._file)
                infos = self._archive.infolist()
            except _READ_ERRORS:
                raise ModelFileError(f"{path} is not a skcreate model file (not a zip archive); "
                                     "a pickled model loads with pickle, at your own risk.") \
                    from None
            names = [info.filename for info in infos]
            duplicated = sorted({name for name in names if names.count(name) > 1})
            if duplicated:
                raise ModelFileError(f"{path}: member(s) {duplicated} stored more than once; "
                                     "refused, as which one is read is ambiguous.")
            unknown = sorted(set(names) - set(_MEMBERS))
            if unknown:
                raise ModelFileError(f"{path}: unexpected member(s) {unknown}; a skcreate model "
                                     f"file holds only {list(_MEMBERS)}.")
            # a compressed size beyond the file's own is a lie that would lift the bound
            file_size = os.fstat(self._file.fileno()).st_size
            for info in infos:
                _check_size(path, info, min(info.compress_size, file_size))
            self.names = set(names)
        except BaseException:
            self._file.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._file.close()

    def read(self, name):
        """The bytes of member ``name`` and their SHA-256, read in chunks."""
        if name not in self.names:
            raise ModelFileError(f"{self.path}: part {name} is missing.")
        digest, data = hashlib.sha256(), bytearray()
        try:
            # zipfile stops at the declared size (checked) and verifies the CRC at the end
            with self._archive.open(name) as member:
                while chunk := member.read(_READ_CHUNK):
                    digest.update(chunk)
                    data += chunk
        except _READ_ERRORS as exc:
            raise ModelFileError(f"{self.path}: {name} is damaged ({exc}).") from None
        return data, digest.hexdigest()


def _is_str_dict(value, values=object):
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, values) for k, v in value.items())


def _read_manifest(archive):
    """The checked manifest of an open model file."""
    path = archive.path
    data, digest = archive.read(_MANIFEST)
    if _MANIFEST_SUM in archive.names:
        recorded, _ = archive.read(_MANIFEST_SUM)
        if bytes(recorded).strip() != digest.encode():
            raise ModelFileError(f"{path}: checksum mismatch in {_MANIFEST}; the file is "
                                 "damaged or was altered.")
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: {_MANIFEST} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "skcreate-model":
        raise ModelFileError(f"{path}: not a skcreate model manifest.")
    version = manifest.get("format_version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {version!r}; this skcreate reads "
                             f"versions 1 to {FORMAT_VERSION}: upgrade skcreate.")
    if version >= 2 and _MANIFEST_SUM not in archive.names:
        raise ModelFileError(f"{path}: part {_MANIFEST_SUM} is missing.")
    for key, check in (("params", _is_str_dict), ("checksums", lambda v: _is_str_dict(v, str)),
                       ("fitted", lambda v: _is_str_dict(v, dict) and all(
                           isinstance(spec.get("kind"), str) for spec in v.values()))):
        if not check(manifest.get(key)):
            raise ModelFileError(f"{path}: the manifest's {key!r} is missing or malformed.")
    if not isinstance(manifest.get("metadata", {}), dict):
        raise ModelFileError(f"{path}: the manifest's metadata is not a mapping.")
    return manifest


def load_metadata(path):
    """The ``metadata`` given to :func:`save` for the model file at ``path``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        Empty for a file saved without metadata (or by a skcreate before it had them).

    Raises
    ------
    ModelFileError
        If ``path`` is not a skcreate model file.
    """
    # the manifest alone: the arrays and weights of a large model need not be read for this
    with _ModelZip(path) as archive:
        return _read_manifest(archive).get("metadata", {})


def _read_checked(archive, manifest):
    """Every member but the manifest, each matching its recorded checksum."""
    path, checksums = archive.path, manifest["checksums"]
    unchecked = sorted(archive.names - set(checksums) - {_MANIFEST, _MANIFEST_SUM})
    if unchecked or _ARRAYS not in checksums:
        raise ModelFileError(f"{path}: the manifest has no checksum for "
                             f"{unchecked or [_ARRAYS]}; every member must have one.")
    members = {}
    for name, digest in checksums.items():
        if name not in (_ARRAYS, _WEIGHTS, _OPTIMIZER):
            raise ModelFileError(f"{path}: checksum of unknown member {name!r}.")
        members[name], actual = archive.read(name)
        if actual != digest:
            raise ModelFileError(f"{path}: checksum mismatch in {name}; the file is damaged "
                                 "or was altered.")
    return members


def _check_array_header(path, npz, info):
    """Refuse an array whose .npy header claims more data than its member holds: numpy would
    allocate the claimed size before finding the data short."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    with npz.zip.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in readers:
            raise ValueError(f"unsupported .npy version {version} in {info.filename}")
        shape, _, dtype = readers[version](member)
    if math.prod(shape) * dtype.itemsize > info.file_size:
        raise ModelFileError(f"{path}: array {info.filename} in arrays.npz claims shape {shape} "
                             f"of {dtype}, more than its {info.file_size} bytes; refused.")


def _read_arrays(path, data):
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for info in npz.zip.infolist():
                _check_size(path, info, len(data))
                _check_array_header(path, npz, info)
            return _Arrays({key: npz[key] for key in npz.files})
    except ModelFileError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ModelFileError(f"{path}: arrays.npz holds a pickled object ({exc}); "
                                 "refused.") from None
        raise ModelFileError(f"{path}: arrays.npz is not a numpy archive ({exc}).") from None
    except _READ_ERRORS as exc:
        raise ModelFileError(f"{path}: arrays.npz is not a numpy archive ({exc}).") from None


def _torch_load(path, member, data, what):
    """A member saved with ``torch.save``, read with ``weights_only=True``."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(f"{path}: {member} holds more than tensors; refused "
                             f"({exc}).") from None
    except (*_READ_ERRORS, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ModelFileError(f"{path}: {member} is not {what} ({exc}).") from None


def _read_optimizer(path, data):
    state = _torch_load(path, _OPTIMIZER, data, "an optimiser state")
    if not (isinstance(state, dict) and isinstance(state.get("state"), dict)
            and isinstance(state.get("param_groups"), list)):
        raise ModelFileError(f"{path}: {_OPTIMIZER} is not an optimiser state dict.")
    return state


def _read_weights(path, data):
    state = _torch_load(path, _WEIGHTS, data, "a torch state dict")
    if not _is_str_dict(state, torch.Tensor):
        raise ModelFileError(f"{path}: weights.pt is not a state dict of named tensors.")
    return state


def _build(path, cls, params, allowed_modules):
    """An unfitted ``cls`` with the saved parameters, validated as ``fit`` would (so that,
    say, ``max_len=3e8`` is refused before a network is built)."""
    try:
        # a file of an older version spells some parameters as it did
        decoded = upgrade_params(cls, _decode_params(path, params, allowed_modules))
        estimator = cls(**decoded)
        # the device and checkpoint folder of the machine that saved need not exist here, and
        # a loaded model uses neither (load places it on its own device): the rest is checked
        probe = cls(**decoded)
        trainer = decoded.get("trainer")
        if trainer is not None and not isinstance(trainer, str):
            probe.set_params(trainer=clone(trainer).set_params(device="cpu",
                                                               checkpoint_path=None))
        probe._validate_params()
        probe._validate_parts()
        probe._check_params()
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ModelFileError(f"{path}: invalid parameters for {cls.__name__} ({exc}).") \
            from None
    return estimator


def load(path, device="cpu", allowed_modules=()):
    """Load a model written by :func:`save` (or ``estimator.save``); no code from the file runs.

    Parameters
    ----------
    path : str or path-like
    device : str or torch.device, default="cpu"
        Where a neural model's weights go: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    allowed_modules : str or iterable of str, default=()
        Modules (with their submodules) from which the user parts a model names (an alignment
        or graph encoder of your own, saved by import path) may be imported. Importing runs
        the module's code: allow only modules you trust. A file naming a part from any other
        module is refused before anything is imported.

    Returns
    -------
    estimator
        Fitted, serving the same recommendations as the saved one.

    Raises
    ------
    ModelFileError
        For anything but a well-formed model file: not a regular file or not a zip, a newer
        format version, a missing, duplicated, unknown or oversized member, a checksum
        mismatch, an unknown estimator, parameters or fitted attributes that estimator does not
        take, weights that do not fit it, or a pickled payload.
    FileNotFoundError, PermissionError
        If ``path`` cannot be opened.
    ValueError
        If ``device`` is not available on this machine (checked before the file is read).
    """
    from ..training import resolve_device

    # a device this machine lacks is the caller's error, not the file's: refused first
    device = resolve_device(device)
    allowed = [allowed_modules] if isinstance(allowed_modules, str) else list(allowed_modules)
    if not all(isinstance(module, str) and module for module in allowed):
        raise ValueError(f"allowed_modules must be module names (str), got "
                         f"{allowed_modules!r}.")
    with _ModelZip(path) as archive:
        manifest = _read_manifest(archive)
        members = _read_checked(archive, manifest)
    name = manifest.get("estimator")
    cls = _estimator_classes().get(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelFileError(f"{path}: unknown estimator {name!r}.")
    required, record = _FITTED[name]
    fitted = manifest["fitted"]
    unexpected, missing = sorted(set(fitted) - required - record), sorted(required - set(fitted))
    if unexpected or missing:
        raise ModelFileError(f"{path}: fitted attributes do not match a fitted {name} "
                             f"(unexpected: {unexpected}, missing: {missing}).")
    arrays = _read_arrays(path, members[_ARRAYS])
    estimator = _build(path, cls, manifest["params"], allowed)
    state = None
    for attribute, spec in fitted.items():
        kind = spec["kind"]
        try:
            if kind == "module":
                if _WEIGHTS not in members:
                    raise ModelFileError(f"{path}: part {_WEIGHTS} is missing.")
                state = _read_weights(path, members[_WEIGHTS])
            elif kind == "optimizer":
                if _OPTIMIZER not in members:
                    raise ModelFileError(f"{path}: part {_OPTIMIZER} is missing.")
                setattr(estimator, attribute, _read_optimizer(path, members[_OPTIMIZER]))
            elif kind == "interactions":
                setattr(estimator, attribute, _decode_interactions(arrays, spec["spec"]))
            elif kind == "index":
                setattr(estimator, attribute, arrays.get_index(spec["spec"]))
            elif kind == "array":
                setattr(estimator, attribute, arrays.get(spec["key"]))
            elif kind == "device":
                setattr(estimator, attribute, device)
            elif kind == "value":
                setattr(estimator, attribute, spec["value"])
            else:
                raise ModelFileError(f"{path}: unknown kind {kind!r} of attribute {attribute}.")
        except ModelFileError:
            raise
        # numpy and pandas raise all sorts on values they were never meant to get (a dtype
        # that is a list...): whatever they raise here, the file is at fault; the chained
        # exception keeps the detail
        except Exception as exc:
            raise ModelFileError(f"{path}: fitted attribute {attribute} is malformed "
                                 f"({exc!r}).") from exc
    try:
        _check_served(estimator)
        estimator._restore(state)
    except Exception as exc:
        raise ModelFileError(f"{path}: the saved weights and arrays do not fit a {name} built "
                             f"from the saved parameters ({exc!r}).") from exc
    return estimator
