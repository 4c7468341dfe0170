"""The interface of CREATE's graph branch: an encoder owns its propagation, loss and penalty."""

from torch import nn

from .component import Component
from .item_table import ItemTable

__all__ = ["GraphEncoder"]


class GraphEncoder(Component):
    """Base of graph encoders (LightGCN, UltraGCN, or a user's own).

    An encoder is constructed with its hyper-parameters only; the estimator clones it and calls
    :meth:`build` with the training graph at fit time. A training step then calls
    :meth:`propagate` once and scores its edge batch with :meth:`loss` and :meth:`penalty`;
    CREATE also reads the step's user embeddings for the alignment.

    Subclasses implement :meth:`build`, :meth:`propagate` and :meth:`loss`, and may override
    :meth:`penalty` and ``n_negatives``. They keep the user table in ``user_embedding``
    (``torch.nn.Embedding``) and the item table in ``item_table``
    (:class:`~skcreate.nn.ItemTable`).

    Attributes
    ----------
    n_negatives : int
        Negatives the sampler draws per positive edge (the ``negatives`` of :meth:`loss` have
        shape (B, n_negatives)).
    """

    n_negatives = 1
    # standard deviation of the normal initialisation of the tables an encoder creates
    init_std = 0.1

    def build(self, user_items, item_table=None):
        """Create the weights for one graph.

        Parameters
        ----------
        user_items : scipy.sparse.csr_matrix, shape (n_users, n_items)
            Binary training interactions.
        item_table : skcreate.nn.ItemTable, optional
            The table to share (CREATE passes the sequence encoder's); the encoder creates
            its own when None.

        Returns
        -------
        self
        """
        raise NotImplementedError

    def _init_tables(self, n_users, n_items, item_table=None):
        """Create ``user_embedding`` and, unless one is shared, ``item_table``.

        Their width is the shared table's, else the encoder's ``n_factors`` parameter.
        """
        width = getattr(self, "n_factors", None) if item_table is None \
            else item_table.embedding.embedding_dim
        if width is None:
            raise ValueError(f"{type(self).__name__} needs n_factors when no item table is "
                             "shared.")
        self.user_embedding = nn.Embedding(n_users, width)
        nn.init.normal_(self.user_embedding.weight, std=self.init_std)
        if item_table is None:
            item_table = ItemTable(n_items, width, std=self.init_std)
        self.item_table = item_table

    def propagate(self, generator=None):
        """(users, items) embeddings for one step, shapes (n_users, d) and (n_items, d).

        ``generator`` is the source of any training-time randomness (edge dropout).
        """
        raise NotImplementedError

    def loss(self, embeddings, users, positives, negatives):
        """The encoder's own loss, mean over a batch of edges.

        Parameters
        ----------
        embeddings : tuple of torch.Tensor
            This step's :meth:`propagate` output.
        users, positives : torch.Tensor of int, shape (B,)
            User and item codes of the batch's edges.
        negatives : torch.Tensor of int, shape (B, n_negatives)
            Sampled item codes.
        """
        raise NotImplementedError

    def penalty(self, users, positives, negatives):
        """Sum of squares of the layer-0 rows the batch touches (users and positives)."""
        return (self.user_embedding(users).pow(2).sum()
                + self.item_table.catalogue[positives].pow(2).sum())
