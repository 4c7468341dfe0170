"""SASRec's causal self-attention encoder of item sequences (Kang & McAuley, 2018), and
BERT4Rec's bidirectional one."""

import math
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval
from torch import nn
from torch.nn import functional as F

from .component import Component
from .item_table import ItemTable

__all__ = ["SASRecEncoder", "BERT4RecEncoder", "attention_mask"]


def attention_mask(items, causal=True):
    """Boolean mask, shape (B, 1, L, L): True where query position i may attend to key j.

    Real positions never see padding keys (row 0). A padding query sees itself only, which keeps
    its softmax finite; its output is discarded anyway.
    """
    length = items.shape[1]
    real_key = (items != ItemTable.padding)[:, None, None, :]
    allowed = real_key
    if causal:
        allowed = allowed & torch.ones(length, length, dtype=torch.bool,
                                       device=items.device).tril()
    positions = torch.arange(length, device=items.device)
    return allowed | (positions[:, None] == positions[None, :])


class SelfAttentionBlock(nn.Module):
    """Multi-head self-attention and a point-wise feed-forward layer, pre- or post-LN."""

    def __init__(self, n_factors, n_heads, dropout, norm_first=True):
        super().__init__()
        self.n_heads = n_heads
        self.norm_first = norm_first
        self.qkv = nn.Linear(n_factors, 3 * n_factors)
        self.out = nn.Linear(n_factors, n_factors)
        self.ffn = nn.Sequential(nn.Linear(n_factors, n_factors), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(n_factors, n_factors))
        self.norm_attn = nn.LayerNorm(n_factors)
        self.norm_ffn = nn.LayerNorm(n_factors)
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def _attend(self, x, mask):
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0)
        return self.dropout(self.out(att.transpose(1, 2).reshape(batch, length, width)))

    def forward(self, x, mask):
        if self.norm_first:
            x = x + self._attend(self.norm_attn(x), mask)
            return x + self.dropout(self.ffn(self.norm_ffn(x)))
        x = self.norm_attn(x + self._attend(x, mask))
        return self.norm_ffn(x + self.dropout(self.ffn(x)))


class SASRecEncoder(Component):
    """Transformer encoder over left-padded sequences of item-table rows (SASRec's, causal).

    Constructed with its options only; :meth:`build` creates the weights for a catalogue and
    a width (the estimator calls it with CREATE's shared item table).

    Parameters
    ----------
    n_blocks : int, default=2
        Transformer blocks.
    n_heads : int, default=1
        Attention heads per block (must divide the width).
    max_len : int, default=50
        Longest sequence; positions are counted back from the most recent item.
    dropout : float, default=0.3
        Dropout on embeddings, attention and feed-forward outputs.
    norm_first : bool, default=True
        Pre-LN (True) or post-LN (False, as in the original SASRec) blocks.

    Attributes
    ----------
    causal : bool
        Causal attention, trained on the next item (True); the bidirectional
        :class:`BERT4RecEncoder` sets False and trains on masked items.
    extra_tokens : int
        Special-token rows the encoder's item table needs (BERT4Rec's [MASK]).

    Examples
    --------
    >>> import torch
    >>> enc = SASRecEncoder(n_blocks=1, n_heads=2, max_len=5).build(n_items=10, n_factors=8)
    >>> enc(torch.tensor([[0, 0, 3, 4, 5]])).shape
    torch.Size([1, 5, 8])
    """

    causal = True
    extra_tokens = 0

    _parameter_constraints = {
        "n_blocks": [Interval(Integral, 1, None, closed="left")],
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "max_len": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "norm_first": ["boolean"],
    }

    def __init__(self, n_blocks=2, n_heads=1, max_len=50, dropout=0.3, norm_first=True):
        super().__init__()
        self.n_blocks = n_blocks
        self.n_heads = n_heads
        self.max_len = max_len
        self.dropout = dropout
        self.norm_first = norm_first

    def build(self, n_items, n_factors, item_table=None):
        """Create the weights for ``n_items`` items of width ``n_factors``, or on a shared
        ``item_table`` (:class:`~skcreate.nn.ItemTable`); returns self."""
        self._validate_params()
        if n_factors % self.n_heads:
            raise ValueError(f"n_factors ({n_factors}) must be divisible by n_heads "
                             f"({self.n_heads}).")
        if item_table is None:
            item_table = ItemTable(n_items, n_factors, self.extra_tokens)
        self.item_table = item_table
        self.position_embedding = nn.Embedding(self.max_len, n_factors)
        nn.init.normal_(self.position_embedding.weight, std=n_factors ** -0.5)
        self.blocks = nn.ModuleList([
            SelfAttentionBlock(n_factors, self.n_heads, self.dropout, self.norm_first)
            for _ in range(self.n_blocks)])
        self.final_norm = nn.LayerNorm(n_factors) if self.norm_first else nn.Identity()
        self.input_dropout = nn.Dropout(self.dropout)
        self.scale = math.sqrt(n_factors)
        return self

    def forward(self, items):
        """Hidden states, shape (B, L, n_factors), for left-padded table rows of shape (B, L)."""
        length = items.shape[1]
        back = (length - 1) - torch.arange(length, device=items.device)
        real = (items != ItemTable.padding).unsqueeze(-1)
        x = self.item_table(items) * self.scale + self.position_embedding(back)
        x = self.input_dropout(x) * real
        mask = attention_mask(items, self.causal)
        for block in self.blocks:
            x = block(x, mask) * real
        return self.final_norm(x)

    @property
    def catalogue_weight(self):
        """Output item table (the catalogue rows), shape (n_items, n_factors)."""
        return self.item_table.catalogue

    def user_state(self, items):
        """State at the most recent position, shape (B, n_factors)."""
        return self(items)[:, -1]


class BERT4RecEncoder(SASRecEncoder):
    """Bidirectional encoder trained on masked items (BERT4Rec, Sun et al., 2019).

    At inference a [MASK] token (the table's first special row) is appended to the history and
    the state at that position scores the catalogue.

    Parameters
    ----------
    n_blocks, n_heads, max_len, dropout, norm_first
        As in :class:`SASRecEncoder` (``max_len`` counts the [MASK], so at least 2).
    mask_prob : float, default=0.2
        Share of items masked per training sequence.
    """

    causal = False
    extra_tokens = 1

    _parameter_constraints = {
        **SASRecEncoder._parameter_constraints,
        "max_len": [Interval(Integral, 2, None, closed="left")],
        "mask_prob": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(self, n_blocks=2, n_heads=1, max_len=50, dropout=0.3, norm_first=True,
                 mask_prob=0.2):
        super().__init__(n_blocks, n_heads, max_len, dropout, norm_first)
        self.mask_prob = mask_prob
