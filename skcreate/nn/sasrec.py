"""SASRec: a causal self-attention encoder of item sequences (Kang & McAuley, 2018)."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from .item_table import ItemTable

__all__ = ["SASRecEncoder", "attention_mask"]


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
    return allowed | torch.eye(length, dtype=torch.bool, device=items.device)


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


class SASRecEncoder(nn.Module):
    """Transformer encoder over left-padded sequences of item-table rows.

    Parameters
    ----------
    n_items : int
        Catalogue size (ignored when ``item_table`` is given).
    n_factors : int
        Embedding width.
    n_blocks, n_heads : int
        Transformer depth and heads per block.
    max_len : int
        Longest sequence; positions are counted back from the most recent item.
    dropout : float
        Dropout on embeddings, attention and feed-forward outputs.
    norm_first : bool
        Pre-LN (True) or post-LN (False) blocks.
    causal : bool
        Causal attention (SASRec); False gives the bidirectional BERT4Rec encoder.
    item_table : skcreate.nn.ItemTable, optional
        A table to share (CREATE's graph branch reads the same one); created when None.
    extra_tokens : int
        Special-token rows of a created table (BERT4Rec's [MASK]).

    Examples
    --------
    >>> import torch
    >>> enc = SASRecEncoder(n_items=10, n_factors=8, n_blocks=1, n_heads=2, max_len=5)
    >>> enc(torch.tensor([[0, 0, 3, 4, 5]])).shape
    torch.Size([1, 5, 8])
    """

    def __init__(self, n_items, n_factors=64, n_blocks=2, n_heads=1, max_len=50, dropout=0.2,
                 norm_first=True, causal=True, item_table=None, extra_tokens=0):
        super().__init__()
        if n_factors % n_heads:
            raise ValueError(f"n_factors ({n_factors}) must be divisible by n_heads ({n_heads}).")
        if item_table is None:
            item_table = ItemTable(n_items, n_factors, extra_tokens)
        self.causal = causal
        self.max_len = max_len
        self.item_table = item_table
        self.position_embedding = nn.Embedding(max_len, n_factors)
        nn.init.normal_(self.position_embedding.weight, std=n_factors ** -0.5)
        self.blocks = nn.ModuleList(
            [SelfAttentionBlock(n_factors, n_heads, dropout, norm_first) for _ in range(n_blocks)])
        self.final_norm = nn.LayerNorm(n_factors) if norm_first else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.scale = math.sqrt(n_factors)

    def forward(self, items):
        """Hidden states, shape (B, L, n_factors), for left-padded table rows of shape (B, L)."""
        length = items.shape[1]
        back = torch.arange(length - 1, -1, -1, device=items.device)
        real = (items != ItemTable.padding).unsqueeze(-1)
        x = self.item_table(items) * self.scale + self.position_embedding(back)
        x = self.dropout(x) * real
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
