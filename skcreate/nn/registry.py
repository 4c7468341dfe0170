"""Built-in graph encoders and alignments by name, and how an estimator turns either into a part."""

from sklearn.base import clone

from .alignment import Alignment, BarlowTwins, InfoNCE
from .graph_encoder import GraphEncoder
from .lightgcn import LightGCNEncoder
from .projected_barlow import ProjectedBarlowTwins
from .ultragcn import UltraGCNEncoder

__all__ = ["Registry", "GRAPH_ENCODERS", "ALIGNMENTS"]


class Registry:
    """Names of the built-in parts of one kind; instances of ``base`` are accepted as they are.

    Parameters
    ----------
    base : type
        Class every user-defined part derives from.
    entries : dict of str to type or None
        Built-in parts; None stands for "no part".
    """

    def __init__(self, base, entries):
        self.base = base
        self.entries = entries

    def check(self, name, value):
        """Raise a ValueError naming parameter ``name`` unless ``value`` is known or a part."""
        if isinstance(value, self.base) or (isinstance(value, str) and value in self.entries):
            return
        raise ValueError(f"{name} must be one of {list(self.entries)} or an instance of "
                         f"skcreate.nn.{self.base.__name__}, got {value!r}.")

    def make(self, value, params):
        """A fresh, unbuilt part for one fit.

        A registered name is constructed from ``params`` (the estimator's flat parameters: each
        constructor argument is taken from the parameter of the same name); an instance is
        cloned, so that the estimator's parameter is never trained in place.
        """
        if not isinstance(value, str):
            return clone(value)
        cls = self.entries[value]
        if cls is None:
            return None
        return cls(**{key: params[key] for key in cls._get_param_names() if key in params})


GRAPH_ENCODERS = Registry(GraphEncoder, {"lightgcn": LightGCNEncoder, "ultragcn": UltraGCNEncoder})
ALIGNMENTS = Registry(Alignment, {"barlow": BarlowTwins, "bt-sr": ProjectedBarlowTwins,
                                  "contrastive": InfoNCE, "none": None})
