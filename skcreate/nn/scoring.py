"""Serving networks: a batch of histories in, catalogue scores out, with every fitted value a
constant, so that one forward pass (and its ONNX export) is the whole of ``recommend``.

Every network here takes ``history``, int64 of shape (B, L): item-table rows (item code + 1),
left-padded with 0 and most recent last, a user's whole history or its last items; and
``users``, int64 of shape (B,): the row of each user among the users seen at fit, or -1 (read
only by networks that keep fitted user rows). It returns scores of shape (B, n_items).
"""

import torch
from torch import nn
from torch.nn import functional as F

from .item_table import ItemTable

__all__ = ["ServingNetwork", "SequenceScorer", "EmbeddingScorer", "LeastSquaresScorer",
           "PopularityScorer", "distinct_weights", "solve_spd"]


def distinct_weights(history, n_items):
    """Float (B, L): 1 / (the item's count in its row) at every position, 0 at padding, so
    that a weighted sum over positions counts each distinct item once."""
    counts = torch.zeros(history.shape[0], n_items + 1, dtype=torch.float32,
                         device=history.device)
    counts = counts.scatter_add(1, history, torch.ones_like(history, dtype=torch.float32))
    return (history != ItemTable.padding).float() / torch.gather(counts, 1, history)


def solve_spd(matrix, rhs):
    """Solutions of batched symmetric positive-definite systems ``matrix @ x = rhs``.

    Gauss-Jordan elimination without pivoting (stable for positive-definite matrices), written
    in elementwise ops and matrix products only: ONNX has no linear solver.

    Parameters
    ----------
    matrix : torch.Tensor, shape (B, n, n)
    rhs : torch.Tensor, shape (B, n)

    Returns
    -------
    torch.Tensor, shape (B, n)
    """
    n = matrix.shape[-1]
    system = torch.cat([matrix, rhs.unsqueeze(-1)], dim=-1)
    eye = torch.eye(n, dtype=matrix.dtype, device=matrix.device)
    for j in range(n):
        pivot = system[:, j:j + 1, :] / system[:, j:j + 1, j:j + 1]
        # row j becomes the pivot row, every other row loses its multiple of it
        factor = system[:, :, j:j + 1] - eye[:, j:j + 1]
        system = system - factor * pivot
    return system[:, :, n]


class SequenceScorer(nn.Module):
    """A sequence encoder's state at the last position against its catalogue rows.

    Parameters
    ----------
    encoder : skcreate.nn.SASRecEncoder
        A built encoder; reads the last ``max_len`` items.
    mask_token : int, optional
        Table row appended to the history (BERT4Rec's [MASK]), the encoder reading the last
        ``max_len - 1`` items before it.
    """

    def __init__(self, encoder, mask_token=None):
        super().__init__()
        self.encoder = encoder
        self.mask_token = mask_token

    @property
    def context(self):
        """How many of the most recent items a score depends on."""
        return self.encoder.max_len - (self.mask_token is not None)

    def forward(self, history, users):
        items = history[:, -self.context:]
        if self.mask_token is not None:
            mask = torch.full((history.shape[0], 1), self.mask_token, dtype=history.dtype,
                              device=history.device)
            items = torch.cat([items, mask], dim=1)
        return self.encoder.user_state(items) @ self.encoder.catalogue_weight.T


class EmbeddingScorer(nn.Module):
    """Dot products of a user vector with item vectors; the user vector is the fitted user's
    row, or folded in from the history's items.

    Parameters
    ----------
    item_vectors : torch.Tensor, shape (n_items, n_factors)
        Scored against, and folded in from.
    user_vectors : torch.Tensor, shape (n_users, n_factors), optional
        Rows of the users seen at fit; without them every user is folded in.
    fold : {"mean", "sum"}, default="mean"
        Folded user: the mean or the sum of the distinct history items' vectors.
    bias_column : bool, default=False
        The last column is an item bias (`implicit`'s BPR): a folded user has 1 there.
    """

    def __init__(self, item_vectors, user_vectors=None, fold="mean", bias_column=False):
        super().__init__()
        # row 0 pads, as in the item table: history rows index it directly
        self.register_buffer("table", F.pad(torch.as_tensor(item_vectors).float(),
                                            (0, 0, 1, 0)))
        self.register_buffer("user_vectors", None if user_vectors is None
                             else torch.as_tensor(user_vectors).float())
        self.fold = fold
        self.bias_column = bias_column

    def forward(self, history, users):
        # the history's distinct rows gathered, not a (B, n_items) product
        weight = distinct_weights(history, self.table.shape[0] - 1)
        state = (self.table[history] * weight.unsqueeze(-1)).sum(1)
        if self.fold == "mean":
            state = state / weight.sum(1, keepdim=True).clamp(min=1)
        if self.bias_column:
            state = torch.cat([state[:, :-1], torch.ones_like(state[:, -1:])], dim=1)
        if self.user_vectors is not None:
            fitted = self.user_vectors[users.clamp(min=0)]
            state = torch.where((users >= 0).unsqueeze(1), fitted, state)
        return state @ self.table[1:].T


class LeastSquaresScorer(nn.Module):
    """Implicit-feedback ALS's exact fold-in (``implicit``'s ``recalculate_user``): the user
    vector solves ``(Y^T C Y + reg I) x = Y^T C p`` with confidence ``alpha`` on the distinct
    history items.

    Parameters
    ----------
    item_vectors : torch.Tensor, shape (n_items, n_factors)
    regularization, alpha : float
        The fitted model's.
    """

    def __init__(self, item_vectors, regularization, alpha):
        super().__init__()
        item_vectors = torch.as_tensor(item_vectors).float()
        n_factors = item_vectors.shape[1]
        # row 0 pads, as in the item table: history rows index it directly
        self.register_buffer("table", F.pad(item_vectors, (0, 0, 1, 0)))
        self.register_buffer("gram", item_vectors.T @ item_vectors
                             + regularization * torch.eye(n_factors))
        self.alpha = float(alpha)

    def forward(self, history, users):
        # each distinct item once: a repeated event weighs 1 / its count in the row
        weight = distinct_weights(history, self.table.shape[0] - 1)
        vectors = self.table[history]
        weighted = vectors * weight.unsqueeze(-1)
        matrix = self.gram + (self.alpha - 1.0) * (weighted.transpose(1, 2) @ vectors)
        rhs = self.alpha * weighted.sum(1)
        return solve_spd(matrix, rhs) @ self.table[1:].T


class PopularityScorer(nn.Module):
    """The same scores, the fitted popularity, for every user."""

    def __init__(self, popularity):
        super().__init__()
        self.register_buffer("popularity", torch.as_tensor(popularity).float())

    def forward(self, history, users):
        return self.popularity.expand(history.shape[0], -1)


class ServingNetwork(nn.Module):
    """A scorer and the rules every recommender applies around it: histories without a known
    item are scored by popularity, and seen items get ``-inf`` when ``filter_seen``.

    Parameters
    ----------
    scorer : nn.Module
        One of this module's scorers.
    popularity : array-like, shape (n_items,)
        Interaction counts at fit.
    filter_seen : bool
    """

    def __init__(self, scorer, popularity, filter_seen):
        super().__init__()
        self.scorer = scorer
        self.register_buffer("popularity", torch.as_tensor(popularity).float())
        self.filter_seen = bool(filter_seen)

    def forward(self, history, users):
        scores = self.scorer(history, users)
        known = (history != ItemTable.padding).any(1, keepdim=True)
        scores = torch.where(known, scores, self.popularity)
        if self.filter_seen:
            scores = F.pad(scores, (1, 0)).scatter(1, history, -torch.inf)[:, 1:]
        return scores
