"""Pluggable torch parts with scikit-learn-style parameters.

A :class:`Component` is an ``nn.Module`` whose constructor arguments are its parameters, as in a
scikit-learn estimator: ``get_params``/``set_params`` read and write them, so an instance passed
to an estimator (``CREATERecommender(alignment=MyAlignment(scale=2.0))``) is cloned by
``sklearn.base.clone`` and tuned by ``GridSearchCV`` as ``alignment__scale``. Its parameters
are checked at ``fit`` against ``_parameter_constraints``, declared beside ``__init__`` as in
scikit-learn's estimators.
"""

import inspect

from sklearn.utils._param_validation import validate_parameter_constraints
from torch import nn

__all__ = ["Component"]


class Component(nn.Module):
    """Base of the parts an estimator accepts as objects (graph encoders, alignments).

    Subclasses store every constructor argument unchanged under its own name and create their
    weights in the constructor or, when they depend on the data, in a later ``build`` step.
    A constructor that takes ``**kwargs`` and passes them to its base's also has the base's
    parameters (a user's alignment gets :class:`~skcreate.nn.Alignment`'s ``positions``...).
    """

    #: scikit-learn's parameter declarations (``sklearn.utils._param_validation``); parameters
    #: not declared are not checked
    _parameter_constraints: dict = {}

    @classmethod
    def _get_param_names(cls):
        names = set()
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            if klass in (Component, nn.Module, object):
                break
            parameters = inspect.signature(init).parameters.values()
            for p in parameters:
                if p.kind == p.VAR_POSITIONAL:
                    raise RuntimeError(f"{klass.__name__} takes *args; a Component's "
                                       "constructor must name its parameters.")
            names |= {p.name for p in parameters if p.name != "self" and p.kind != p.VAR_KEYWORD}
            if not any(p.kind == p.VAR_KEYWORD for p in parameters):
                break
        return sorted(names)

    def _validate_params(self):
        """Check the parameters against ``_parameter_constraints`` (a ``ValueError`` naming the
        first one that fails)."""
        validate_parameter_constraints(self._parameter_constraints,
                                       self.get_params(deep=False),
                                       caller_name=type(self).__name__)

    def get_params(self, deep=True):
        """Constructor parameters, as in :meth:`sklearn.base.BaseEstimator.get_params`
        (``deep`` is accepted for its signature: a part holds no parts)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor parameters; unknown names raise a ``ValueError`` naming them."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {valid}.")
            setattr(self, name, value)
        return self

    def extra_repr(self):
        # the options that differ from their defaults, as scikit-learn prints estimators
        defaults = {}
        for klass in reversed(type(self).__mro__):
            init = klass.__dict__.get("__init__")
            if init is not None and klass not in (nn.Module, object):
                defaults.update((p.name, p.default) for p in
                                inspect.signature(init).parameters.values()
                                if p.default is not p.empty)
        return ", ".join(f"{name}={value!r}" for name, value in self.get_params().items()
                         if name not in defaults or not _same(value, defaults[name]))


def _same(a, b):
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):
        return False
