"""The interface of CREATE's graph branch: an encoder owns its propagation, loss and penalty."""

from torch import nn
from torch.nn import functional as F

from .component import Component
from .item_table import ItemTable

__all__ = ["GraphEncoder", "PartialTable", "lookup"]


def lookup(table, codes):
    """``table[codes]`` for a 2-D tensor or a :class:`PartialTable`, with a deterministic
    backward pass.

    Indexing's backward adds repeated rows with atomic adds on CPU threads, so that two
    identical steps differ in the last bits; an embedding lookup adds them in order.
    """
    if isinstance(table, PartialTable):
        return table[codes]
    return F.embedding(codes, table)


class PartialTable:
    """Rows of a table at a subset of its codes, read by code like the whole table.

    What :meth:`GraphEncoder.embed` returns when it computes only the rows a step needs:
    ``table[codes]`` gives the rows of ``codes``, as indexing the whole table would, for codes
    in the subset (any other code reads an arbitrary row).

    Parameters
    ----------
    positions : torch.Tensor of int64, shape (table size,)
        Row of ``rows`` holding each code.
    rows : torch.Tensor, shape (subset size, d)
    layer0 : torch.Tensor, optional, shape (subset size, d)
        The layer-0 rows at the same positions, where :meth:`GraphEncoder.embed` read them
        anyway: :meth:`GraphEncoder.step_penalty` reads them from here.

    Examples
    --------
    >>> import torch
    >>> table = PartialTable(torch.tensor([0, 0, 1]), torch.tensor([[1.0], [2.0]]))
    >>> table[torch.tensor([2, 0])].tolist()
    [[2.0], [1.0]]
    """

    def __init__(self, positions, rows, layer0=None):
        self.positions = positions
        self.rows = rows
        self.layer0 = layer0

    def __getitem__(self, codes):
        return lookup(self.rows, self.positions[codes])


class GraphEncoder(Component):
    """Base of graph encoders (LightGCN, UltraGCN, or a user's own).

    An encoder is constructed with its hyper-parameters only; the estimator clones it and calls
    :meth:`build` with the training graph at fit time. A training step then calls
    :meth:`embed` once with the users and items it reads, and scores its edge batch with
    :meth:`loss` and :meth:`penalty`; CREATE also reads the step's user embeddings for the
    alignment. Serving reads :meth:`propagate` (every row).

    Subclasses implement :meth:`build`, :meth:`propagate` and :meth:`loss`, and may override
    :meth:`embed` (to compute only the rows a step reads), :meth:`penalty` and
    ``n_negatives``. They keep the user table in ``user_embedding``
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
    #: under ``row_sparse="auto"`` (and LightGCN's ``propagation="auto"``), graphs of more
    #: user-item edges train in the scalable mode: measured, the two cost the same at 124k
    #: edges (CREATE's warm-up) and the scalable mode is 1.5x faster at 296k (LightGCN) and
    #: 1.6x at 419k (CREATE), its lead growing with the graph, since dense updates of every
    #: row at every step grow an epoch quadratically (``benchmarks/results/size-sweep-auto``).
    #: Amazon Beauty's graphs (86k edges for CREATE, 198k for LightGCN on the whole data)
    #: keep the exact path their quality was measured on.
    large_graph = 250_000
    # whether build() found the graph larger than large_graph
    _large = False

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

    def _measure(self, user_items):
        """Note the graph's size for the ``"auto"`` options (subclasses call it in build)."""
        self._large = user_items.nnz > self.large_graph

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
        self._own_item_table = item_table is None
        if item_table is None:
            item_table = ItemTable(n_items, width, std=self.init_std)
        self.item_table = item_table
        self._sync_sparse()

    def _sync_sparse(self):
        """Set the tables' row-sparse gradients by ``_row_sparse`` (a shared item table's are
        its owner's to set)."""
        self.user_embedding.sparse = self._row_sparse
        if getattr(self, "_own_item_table", False):
            self.item_table.sparse = self._row_sparse

    @property
    def _row_sparse(self):
        # an encoder of your own without the option keeps dense gradients
        value = getattr(self, "row_sparse", False)
        if isinstance(value, str):  # "auto": large graphs on a CPU (built on one)
            table = getattr(self, "user_embedding", None)
            return self._large and (table is None or table.weight.device.type == "cpu")
        return bool(value)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        # "auto" keeps dense gradients off the CPU, as at fit: a GPU updates whole tables
        # fast, and NCCL reduces no sparse gradient under data parallelism
        if getattr(self, "user_embedding", None) is not None and \
                isinstance(getattr(self, "row_sparse", None), str):
            self._sync_sparse()
        return self

    def _item_rows(self, codes):
        """Catalogue rows of item codes with a row-sparse gradient (``row_sparse``), also of a
        shared table whose other reads are dense."""
        return F.embedding(ItemTable.rows(codes), self.item_table.weight, sparse=True)

    def propagate(self, generator=None):
        """(users, items) embeddings for one step, shapes (n_users, d) and (n_items, d).

        ``generator`` is the source of any training-time randomness (edge dropout).
        """
        raise NotImplementedError

    def embed(self, users, items, generator=None, neighbour_gradients=True):
        """(users, items) embeddings for one step, readable at least at ``users`` and ``items``.

        The default is :meth:`propagate` (whole tables). An encoder whose rows are costly to
        compute (LightGCN) returns :class:`PartialTable` lookups of the rows the step reads;
        either way ``embeddings[0][users]`` and ``embeddings[1][items]`` are those rows.

        Parameters
        ----------
        users, items : torch.Tensor of int
            User and item codes the step reads (repeats allowed).
        generator : torch.Generator, optional
            As in :meth:`propagate`.
        neighbour_gradients : bool, default=True
            False: the rows are the same, but the gradients reach only the layer-0 rows of
            ``users`` and ``items``, not those of the neighbours their propagation read (a
            cheaper step). Only an encoder that says so (:meth:`own_rows_step`) takes it.
        """
        if not neighbour_gradients:
            raise ValueError(f"{type(self).__name__} cannot keep gradients from the "
                             "neighbours its step reads (neighbour_gradients=False).")
        return self.propagate(generator)

    def own_rows_step(self, device=None):
        """Whether the training steps' :meth:`embed` takes ``neighbour_gradients=False`` on
        ``device`` (a :class:`torch.device`; by default where the encoder is; after
        :meth:`build`)."""
        return False

    def loss(self, embeddings, users, positives, negatives):
        """The encoder's own loss, mean over a batch of edges.

        Parameters
        ----------
        embeddings : tuple
            This step's :meth:`embed` output (tensors or :class:`PartialTable`), read by
            code: ``embeddings[0][users]``, ``embeddings[1][positives]``.
        users, positives : torch.Tensor of int, shape (B,)
            User and item codes of the batch's edges.
        negatives : torch.Tensor of int, shape (B, n_negatives)
            Sampled item codes.
        """
        raise NotImplementedError

    def step_penalty(self, embeddings, users, positives, negatives):
        """:meth:`penalty` of a step given its :meth:`embed` output.

        The default is :meth:`penalty`; an encoder whose ``embed`` read the layer-0 rows
        reads them from its :class:`PartialTable` instead, so that a row-sparse table gets
        one gradient a step, sorted and distinct, which the optimiser takes without a sort.
        """
        return self.penalty(users, positives, negatives)

    def penalty(self, users, positives, negatives):
        """Sum of squares of the layer-0 rows the batch touches (users and positives)."""
        items = self._item_rows(positives) if self._row_sparse \
            else lookup(self.item_table.catalogue, positives)
        return self.user_embedding(users).pow(2).sum() + items.pow(2).sum()
