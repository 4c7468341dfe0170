"""Pluggable torch parts with scikit-learn-style parameters.

A :class:`Component` is an ``nn.Module`` whose constructor arguments are its parameters, as in a
scikit-learn estimator: ``get_params``/``set_params`` read and write them, so an instance passed
to an estimator (``CREATERecommender(alignment=MyAlignment(scale=2.0))``) is cloned by
``sklearn.base.clone`` and tuned by ``GridSearchCV`` as ``alignment__scale``.
"""

import inspect

from torch import nn

__all__ = ["Component"]


class Component(nn.Module):
    """Base of the parts an estimator accepts as objects (graph encoders, alignments).

    Subclasses store every constructor argument unchanged under its own name and create their
    weights in the constructor or, when they depend on the data, in a later ``build`` step.
    """

    @classmethod
    def _get_param_names(cls):
        init = cls.__init__
        if init is object.__init__ or init is nn.Module.__init__:
            return []
        signature = inspect.signature(init)
        for p in signature.parameters.values():
            if p.kind == p.VAR_POSITIONAL:
                raise RuntimeError(f"{cls.__name__} takes *args; a Component's constructor "
                                   "must name its parameters.")
        return sorted(p.name for p in signature.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True):
        """Constructor parameters, as in :meth:`sklearn.base.BaseEstimator.get_params`."""
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
        return ", ".join(f"{name}={value!r}" for name, value in self.get_params().items())
