"""The built-in parts, and the names that stand for their default instances."""

from sklearn.base import clone

from .alignment import BarlowTwins, InfoNCE
from .lightgcn import LightGCNEncoder
from .local_loss import FullCrossEntropy, ScalableCrossEntropy
from .projected_barlow import ProjectedBarlowTwins
from .sasrec import BERT4RecEncoder, SASRecEncoder
from .ultragcn import UltraGCNEncoder

__all__ = ["Shortcuts", "BUILT_IN_PARTS"]

#: every part class skcreate defines, saved in model files by class name
BUILT_IN_PARTS = (SASRecEncoder, BERT4RecEncoder, LightGCNEncoder, UltraGCNEncoder, BarlowTwins,
                  ProjectedBarlowTwins, InfoNCE, FullCrossEntropy, ScalableCrossEntropy)


class Shortcuts:
    """What an estimator's part parameter accepts: an instance of ``base``, or a name.

    Parameters
    ----------
    base : type
        Class every part of this kind derives from (a user's own included).
    defaults : dict of str or None to callable or None
        Name -> a function returning the part the name stands for (None as a name: the
        default part of a parameter whose default is None); None stands for "no part".

    Examples
    --------
    >>> from skcreate.nn import Alignment, BarlowTwins
    >>> shortcuts = Shortcuts(Alignment, {"barlow": BarlowTwins, "none": None})
    >>> shortcuts.make("barlow")
    BarlowTwins()
    """

    def __init__(self, base, defaults):
        self.base = base
        self.defaults = defaults

    @staticmethod
    def is_name(value):
        """Whether ``value`` is given as a name (a string, or None) rather than a part."""
        return value is None or isinstance(value, str)

    def check(self, name, value):
        """Raise a ValueError naming parameter ``name`` unless ``value`` is a name or a part."""
        if isinstance(value, self.base) or (self.is_name(value) and value in self.defaults):
            return
        # the public path: the package that exports the base class
        package = self.base.__module__.rpartition(".")[0]
        raise ValueError(f"{name} must be one of {list(self.defaults)} or an instance of "
                         f"{package}.{self.base.__name__}, got {value!r}.")

    def make(self, value):
        """A fresh, unbuilt part: the default instance of a name (None for "no part"), or a
        clone of an instance, so that the estimator's parameter is never trained in place."""
        if not self.is_name(value):
            return clone(value)
        factory = self.defaults[value]
        return None if factory is None else factory()

    def resolve(self, value):
        """The part ``value`` stands for, without cloning an instance (None: no part)."""
        return self.make(value) if self.is_name(value) else value
