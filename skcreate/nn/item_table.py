"""The item table shared by every encoder: padding row, catalogue rows, extra tokens."""

import torch
from torch import nn
from torch.nn import functional as F

from ..data.interactions import FIRST_ITEM_ROW, PADDING_ROW

__all__ = ["ItemTable"]


class ItemTable(nn.Module):
    """Item embeddings with one fixed layout.

    Row 0 is padding (zero, never trained), rows ``1..n_items`` are the catalogue (item code
    ``c`` sits in row ``c + 1``) and ``extra_tokens`` rows follow for special tokens such as
    BERT4Rec's [MASK]. Encoders and losses read rows through this class instead of index
    arithmetic of their own.

    Parameters
    ----------
    n_items : int
        Catalogue size.
    n_factors : int
        Embedding width.
    extra_tokens : int, default=0
        Special-token rows after the catalogue.
    std : float, optional
        Standard deviation of the normal initialisation; default ``n_factors ** -0.5``.
    sparse : bool, default=False
        Row lookups (:meth:`forward`, :meth:`take`) give a row-sparse gradient, for steps that
        read a few rows of a large table (SCE); it needs a sparse-aware optimiser such as
        :class:`skcreate.nn.LazyAdam`. Dense reads (``weight``, ``catalogue``) stay dense.

    Examples
    --------
    >>> import torch
    >>> table = ItemTable(n_items=3, n_factors=2, extra_tokens=1)
    >>> table.weight.shape, table.catalogue.shape, table.token(0)
    (torch.Size([5, 2]), torch.Size([3, 2]), 4)
    >>> ItemTable.rows(torch.tensor([0, 2])).tolist()
    [1, 3]
    """

    padding = PADDING_ROW

    def __init__(self, n_items, n_factors, extra_tokens=0, std=None, sparse=False):
        super().__init__()
        self.n_items = n_items
        self.extra_tokens = extra_tokens
        self.embedding = nn.Embedding(n_items + 1 + extra_tokens, n_factors,
                                      padding_idx=self.padding, sparse=sparse)
        nn.init.normal_(self.embedding.weight, std=n_factors ** -0.5 if std is None else std)
        with torch.no_grad():
            self.embedding.weight[self.padding].zero_()

    @property
    def weight(self):
        """Every row, shape (n_items + 1 + extra_tokens, n_factors)."""
        return self.embedding.weight

    @property
    def catalogue(self):
        """Rows of the catalogue in item-code order, shape (n_items, n_factors)."""
        return self.embedding.weight[1:self.n_items + 1]

    def token(self, index):
        """Row of special token ``index`` (0-based among the extra tokens)."""
        if not 0 <= index < self.extra_tokens:
            raise IndexError(f"token {index} out of range: the table has {self.extra_tokens} "
                             "extra token(s).")
        return self.n_items + 1 + index

    @staticmethod
    def rows(codes):
        """Table rows of item codes (0-based)."""
        return codes + FIRST_ITEM_ROW

    @staticmethod
    def codes(rows):
        """Item codes of catalogue rows."""
        return rows - FIRST_ITEM_ROW

    @property
    def sparse(self):
        return self.embedding.sparse

    @sparse.setter
    def sparse(self, value):
        self.embedding.sparse = bool(value)

    def take(self, codes):
        """Catalogue rows of item codes, shape ``codes.shape + (n_factors,)``."""
        return F.embedding(self.rows(codes), self.embedding.weight, sparse=self.sparse)

    def forward(self, rows):
        return self.embedding(rows)
