"""LightGCN (He et al., 2020): parameter-free propagation over the normalised graph, BPR loss."""

import copy
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch.nn import functional as F

from .graph_encoder import GraphEncoder, PartialTable, lookup
from .item_table import ItemTable
from .losses import bpr_loss
from .sparse import block_spmm, change_spmm, distinct_rows, drop_edges, dropout_seed, \
    normalized_adjacency, random_walks, row_block, stack_blocks, sum_blocks, symmetric_spmm, \
    unique_codes

__all__ = ["LightGCNEncoder"]

PROPAGATIONS = ("auto", "full", "subgraph", "historical")


class LightGCNEncoder(GraphEncoder):
    """LightGCN: ``E(k+1) = Â E(k)``, embeddings = mean of layers 0..K, trained by BPR.

    A training step propagates only over the K-hop neighbourhood of the nodes it reads
    (:meth:`embed`): going back from those nodes, hop by hop, it gathers the adjacency rows
    each layer needs, then runs the K products forward on these row blocks. Every row it
    returns equals full propagation's, and so do the loss and its gradients.

    Parameters
    ----------
    n_factors : int, optional
        Embedding width; by default the width of the item table given to :meth:`build`.
    n_layers : int, default=3
        Propagation hops K.
    normalize_layers : bool, default=False
        Row-L2-normalise each propagated layer before averaging.
    edge_dropout : float, default=0.0
        Share of edges dropped at every training pass.
    propagation : {"auto", "full", "subgraph", "historical"}, default="auto"
        How :meth:`embed` computes a step's rows. "full" propagates the whole graph;
        "subgraph" only the neighbourhood of the step's nodes; "historical" without
        propagating in steps, after LTGNN (Zhang et al., 2024): layers 1..K are propagated
        over the whole graph without gradient when a training epoch starts (:meth:`train`;
        only their sum is kept unless ``normalize_layers``);
        a step reads its nodes' rows of them and adds an unbiased estimate of how the
        layer-0 rows' change since moved them: over the (sampled) neighbours for layer 1,
        along ``walks`` random walks per node for layers 2..K
        (:func:`~skcreate.nn.sparse.random_walks`). A step then costs its nodes times
        ``fanout + walks * (K - 1)`` rows, whatever the graph's size. Its rows equal full
        propagation's at the weights of the last refresh, whatever the fanout, and the
        gradients reach the layer-0 rows of the walks' ends with their expected weights. It
        takes no ``edge_dropout``. On a GPU, "subgraph" and "historical" read a block's size
        back to the host at every hop. "auto" propagates the neighbourhood for the layers
        whose row blocks hold less than ``full_share`` (0.3) of the adjacency's entries, and
        propagates the lower layers in full, or all of them when the batch's own rows are
        already that large (a small graph or a large batch reaches most of the graph in a
        few hops, where a full product is cheaper than gathering). On a graph of more than
        ``large_graph`` (250,000) user-item edges "auto" trains as "historical" with a
        ``fanout`` of 10 unless one is given (without ``edge_dropout``): a step's cost then
        stays bounded as the graph grows, where exact neighbourhoods cover a growing share of
        it. On a GPU "auto" propagates in full: gathering a neighbourhood reads its size back
        to the host at every hop, which stalls the device, while full sparse products are
        fast there.
    row_sparse : bool or "auto", default="auto"
        The step's reads of layer-0 rows give row-sparse gradients, which the estimator
        updates row by row (:class:`~skcreate.nn.LazyAdam`): a step costs the rows of its
        neighbourhood rather than the whole tables. Reads of whole tables (full propagation)
        stay dense. Rows a step does not read keep their weights and moments, unlike under
        dense Adam. "auto": on graphs of more than ``large_graph`` edges on a CPU, where
        updating every row at every step makes an epoch grow quadratically (a GPU updates
        whole tables fast, and NCCL reduces no sparse gradient under data parallelism).
    fanout : int, optional
        In a training step's subgraph propagation, each node aggregates at most this many
        neighbours per hop, drawn uniformly and reweighted to keep the aggregate unbiased
        (:func:`~skcreate.nn.sparse.row_block`), so that a step's cost is bounded by
        ``batch x (1 + fanout) ** n_layers`` rows whatever the graph's size. None (all
        neighbours) is exact, as is a fanout above the largest degree. Serving propagates
        exactly.
    walks : int, optional
        Under historical propagation, the random walks per node that estimate how layers
        2..K moved since the refresh (with ``n_layers >= 2``); None takes the fanout, or 10.
        A step reads about ``walks * (n_layers - 1)`` rows per node for them (layer k's walks
        take k hops), most of its rows at K = 3: on Amazon Beauty's validation split (3
        seeds, historical, fanout 10) 3 walks instead of 10 scored 1.41 against 1.47 %
        NDCG@10 and 19.9 against 22.9 % coverage, for steps 27 % cheaper at 1M interactions
        (45 against 61 ms).

    Attributes
    ----------
    user_embedding : torch.nn.Embedding
        Layer-0 user rows (after :meth:`build`).
    item_table : skcreate.nn.ItemTable
        Layer-0 item rows, shared with CREATE's sequence encoder.
    adjacency : torch.Tensor
        ``D^-1/2 A D^-1/2`` of the training graph, sparse CSR; moves with the module.

    Examples
    --------
    >>> import scipy.sparse as sp, torch
    >>> enc = LightGCNEncoder(n_factors=4, n_layers=2).build(sp.csr_matrix([[1, 0, 1], [0, 1, 1]]))
    >>> [t.shape for t in enc.propagate()]
    [torch.Size([2, 4]), torch.Size([3, 4])]
    >>> users, items = enc.embed(torch.tensor([1]), torch.tensor([0, 2]))
    >>> torch.allclose(users[torch.tensor([1])], enc.propagate()[0][1:])
    True
    """

    # "historical" without a fanout: random walks per node that carry layers 2..K's updates
    default_walks = 10
    # "auto": a row block holding more than this share of the adjacency's entries costs about
    # as much as a full product (gathering it and multiplying by its transpose cost extra)
    full_share = 0.3

    _parameter_constraints = {
        "n_factors": [None, Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 0, None, closed="left")],
        "normalize_layers": ["boolean"],
        "edge_dropout": [Interval(Real, 0, 1, closed="left")],
        "propagation": [StrOptions(set(PROPAGATIONS))],
        "row_sparse": ["boolean", StrOptions({"auto"})],
        "fanout": [None, Interval(Integral, 1, None, closed="left")],
        "walks": [None, Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, n_factors=None, n_layers=3, normalize_layers=False, edge_dropout=0.0,
                 propagation="auto", row_sparse="auto", fanout=None, walks=None):
        super().__init__()
        self.n_factors = n_factors
        self.n_layers = n_layers
        self.normalize_layers = normalize_layers
        self.edge_dropout = edge_dropout
        self.propagation = propagation
        self.row_sparse = row_sparse
        self.fanout = fanout
        self.walks = walks
        self.adjacency = None
        # layers 0..K of the whole graph at the last refresh (propagation="historical"), None
        # when stale
        self._history = None

    def build(self, user_items, item_table=None):
        self._validate_params()
        if self.propagation == "historical" and self.edge_dropout > 0:
            raise ValueError("edge_dropout must be 0 with propagation='historical': its "
                             "layers come from propagations of the whole graph, got "
                             f"edge_dropout={self.edge_dropout!r}.")
        n_users, n_items = user_items.shape
        self._measure(user_items)
        self._init_tables(n_users, n_items, item_table)
        self.n_users = n_users
        self.adjacency = normalized_adjacency(user_items)
        return self

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.adjacency is not None:
            self.adjacency = fn(self.adjacency)
        self._history = None
        return self

    def __deepcopy__(self, memo):
        # torch cannot deep-copy a sparse CSR tensor (it has no storage): the copy gets a clone
        # of the adjacency, and the rest of the module is copied as usual
        copied = self.__class__.__new__(self.__class__)
        memo[id(self)] = copied
        for name, value in self.__dict__.items():
            if name == "adjacency" and value is not None:
                copied.__dict__[name] = value.clone()
            else:
                copied.__dict__[name] = copy.deepcopy(value, memo)
        return copied

    def train(self, mode=True):
        """Set the training mode; entering it marks the historical layers stale (the training
        loop enters it at every epoch, so ``propagation="historical"`` refreshes them once an
        epoch)."""
        if mode:
            self._history = None
        return super().train(mode)

    def layer0(self):
        """Concatenated user and item rows of layer 0, shape (n_users + n_items, d)."""
        return torch.cat([self.user_embedding.weight, self.item_table.catalogue])

    def _layer0_rows(self, nodes):
        """Layer-0 rows of sorted node indices (users before items)."""
        n_users = int(torch.searchsorted(nodes, self.n_users))
        items = ItemTable.rows(nodes[n_users:] - self.n_users)
        if self._row_sparse:
            return distinct_rows((self.user_embedding.weight, self.item_table.weight),
                                 (nodes[:n_users], items))
        # index_select on the whole weights: each backward is one index_add into the table's
        # gradient, without the copies that indexing a slice of the table costs
        return torch.cat([self.user_embedding.weight.index_select(0, nodes[:n_users]),
                          self.item_table.weight.index_select(0, items)])

    def _dropout(self, generator):
        """This step's edge-dropout seed, None when no edge is dropped."""
        if self.training and self.edge_dropout > 0:
            return dropout_seed(generator)
        return None

    def _adjacency(self, seed):
        if seed is None:
            return self.adjacency
        return drop_edges(self.adjacency, self.edge_dropout, seed=seed)

    def _layer(self, layer):
        """A layer's term of the mean."""
        return F.normalize(layer, dim=-1) if self.normalize_layers else layer

    def propagate(self, generator=None):
        return self._propagate(self._dropout(generator))

    def _propagate(self, seed):
        adjacency = self._adjacency(seed)
        layer = self.layer0()
        total = layer
        for _ in range(self.n_layers):
            layer = symmetric_spmm(adjacency, layer)
            total = total + self._layer(layer)
        out = total / (self.n_layers + 1)
        return out[:self.n_users], out[self.n_users:]

    def embed(self, users, items, generator=None, neighbour_gradients=True):
        """(users, items) rows that ``users`` and ``items`` read, as :class:`PartialTable`.

        The K-hop plan: ``sets[0]`` are the requested nodes, ``sets[r + 1]`` adds the
        neighbours of ``sets[r]``; layer ``K - r`` is needed on ``sets[r]`` and computed from
        layer ``K - r - 1`` on ``sets[r + 1]`` by the row block of ``sets[r]``. With
        ``propagation="full"`` this is :meth:`propagate`. ``neighbour_gradients=False``
        (historical training steps only, :meth:`own_rows_step`) reads the neighbours' and
        walks' rows without gradient: the same rows, gradients to the step's own rows only.
        """
        seed = self._dropout(generator)
        adjacency = self.adjacency
        propagation, fanout = self._step_propagation()
        if propagation == "historical" and self.training and self.n_layers:
            return self._embed_historical(users, items, generator, fanout,
                                          neighbour_gradients)
        if not neighbour_gradients:
            raise ValueError("neighbour_gradients=False needs a training step under "
                             "historical propagation (own_rows_step), got propagation="
                             f"{propagation!r}, n_layers={self.n_layers}, training="
                             f"{self.training}.")
        if propagation == "full" or self.n_layers == 0:
            return self._propagate(seed)
        size = adjacency.shape[0]
        dropout = self.edge_dropout if seed is not None else 0.0
        # neighbours are sampled in training steps only: serving propagates exactly
        fanout = fanout if self.training else None
        budget = self.full_share * adjacency.values().numel() \
            if propagation == "auto" else float("inf")
        mask = torch.zeros(size, dtype=torch.bool, device=users.device)
        mask[users] = True
        mask[items + self.n_users] = True
        nodes = mask.nonzero().squeeze(1)
        # positions[r][v]: row of node v in sets[r] (a dense map: one cumsum per hop
        # instead of a sort of the gathered columns)
        positions = [mask.cumsum(0) - 1]
        sets, blocks = [nodes], []
        crow = adjacency.crow_indices()
        while len(blocks) < self.n_layers:
            # the next block's size is known from the degrees before gathering it
            degrees = crow[sets[-1] + 1] - crow[sets[-1]]
            if fanout is not None:
                degrees = degrees.clamp(max=fanout)
            if degrees.sum() > budget:
                break
            block = row_block(adjacency, sets[-1], dropout, seed, fanout, generator)
            blocks.append(block)
            mask[block.cols] = True
            sets.append(mask.nonzero().squeeze(1))
            positions.append(mask.cumsum(0) - 1)
        if not blocks:
            return self._propagate(seed)
        n_full = self.n_layers - len(blocks)
        if n_full:
            total = base = self._layer0_rows(nodes)
            full = self._adjacency(seed)
            layer = self.layer0()
            for _ in range(n_full):
                layer = symmetric_spmm(full, layer)
                total = total + self._layer(lookup(layer, nodes))
            layer = lookup(layer, sets[-1])
        else:
            # one read of the layer-0 rows: one row-sparse gradient per table
            layer = self._layer0_rows(sets[-1])
            total = base = lookup(layer, positions[-1][nodes])
        for r in reversed(range(len(blocks))):
            block = blocks[r]
            layer = block_spmm(block.indptr, positions[r + 1][block.cols], block.values,
                               len(sets[r + 1]), layer)
            total = total + self._layer(lookup(layer, positions[r][nodes]) if r else layer)
        out = total / (self.n_layers + 1)
        return (PartialTable(positions[0][:self.n_users], out, base),
                PartialTable(positions[0][self.n_users:], out, base))

    def _step_propagation(self, device=None):
        """The propagation a step takes on ``device`` (by default where the graph is) and its
        fanout ("auto" resolved)."""
        if self.propagation != "auto":
            return self.propagation, self.fanout
        if (device or self.adjacency.device).type != "cpu":
            return "full", self.fanout
        if self._large and self.edge_dropout == 0:
            return "historical", self.fanout or self.default_walks
        return "auto", self.fanout

    def own_rows_step(self, device=None):
        return self.n_layers > 0 and self._step_propagation(device)[0] == "historical"

    def _embed_historical(self, users, items, generator, fanout, neighbour_gradients=True):
        """:meth:`embed` under ``propagation="historical"``: one (sampled) hop per step."""
        if self._history is None:
            with torch.no_grad():
                layer = self.layer0()
                self._history = [layer]
                total = None
                for _ in range(self.n_layers):
                    layer = symmetric_spmm(self.adjacency, layer)
                    if self.normalize_layers:
                        self._history.append(layer)
                    elif total is None:
                        total = layer.clone()
                    else:
                        total.add_(layer)
                if total is not None:
                    # the mean is linear in layers 1..K: a step reads their sum, and the
                    # estimates of their changes are one block's product
                    self._history.append(total)
        history = self._history
        nodes = torch.cat([users, items + self.n_users]).unique()
        block = row_block(self.adjacency, nodes, fanout=fanout, generator=generator)
        # layer k is the refreshed one plus an estimate of A^k applied to the change of the
        # layer-0 rows since (a control variate: exact at the refresh): over the sampled
        # neighbours for k = 1, along random walks beyond, so gradients reach k hops
        walks = self.walks or fanout or self.default_walks
        # layer k's estimate needs walks of k hops (the first hop's ends are not read); one
        # layer needs none
        ends, weights = random_walks(self.adjacency, nodes, walks,
                                     self.n_layers if self.n_layers > 1 else 0, generator)
        ends, weights = ends[1:], weights[1:]
        # one read of the layer-0 rows (the step's own and their neighbours'): one row-sparse
        # gradient per table
        read, columns = unique_codes(torch.cat([nodes, block.cols, *ends]),
                                     self.adjacency.shape[0])
        # without neighbour gradients the same rows are read twice: without gradient for the
        # estimates, with it for the step's own (the optimiser then updates only those)
        with torch.set_grad_enabled(neighbour_gradients and torch.is_grad_enabled()):
            rows = self._layer0_rows(read)
        own, *columns = columns.split([len(nodes), len(block.cols)] + [len(end) for end in ends])
        walk_indptr = torch.arange(0, len(nodes) * walks + 1, walks, device=nodes.device)
        blocks = [(block.indptr, columns[0], block.values)] + \
            [(walk_indptr, cols, values) for cols, values in zip(columns[1:], weights)]
        # one product for every layer's estimate: of their sum, or of each (stacked)
        blocks = stack_blocks(blocks) if self.normalize_layers else sum_blocks(blocks)
        # the step's own rows come with the product, so that the rows' gradient is one array
        estimates, base = change_spmm(*blocks, rows, history[0], read, own)
        if not neighbour_gradients:
            base = self._layer0_rows(nodes)
        total = base
        for layer, estimate in zip(history[1:], estimates.split(len(nodes))):
            total = total + self._layer(layer.index_select(0, nodes) + estimate)
        # a map from code to row written at the step's nodes only (PartialTable reads no other)
        positions = torch.empty(self.adjacency.shape[0], dtype=torch.long, device=nodes.device)
        positions[nodes] = torch.arange(len(nodes), device=nodes.device)
        out = total / (self.n_layers + 1)
        return (PartialTable(positions[:self.n_users], out, base),
                PartialTable(positions[self.n_users:], out, base))

    def loss(self, embeddings, users, positives, negatives):
        user_emb, item_emb = embeddings
        return bpr_loss(lookup(user_emb, users), lookup(item_emb, positives),
                        lookup(item_emb, negatives))

    def step_penalty(self, embeddings, users, positives, negatives):
        """:meth:`penalty`, read from the layer-0 rows of a step's neighbourhood where
        :meth:`embed` returned them (the same value and gradients); a subclass's own
        ``penalty`` is called as it is."""
        user_rows, item_rows = embeddings
        if getattr(user_rows, "layer0", None) is None or \
                type(self).penalty is not LightGCNEncoder.penalty:
            return self.penalty(users, positives, negatives)
        items = torch.cat([positives, negatives.reshape(-1)])
        return (lookup(user_rows.layer0, user_rows.positions[users]).pow(2).sum()
                + lookup(item_rows.layer0, item_rows.positions[items]).pow(2).sum())

    def penalty(self, users, positives, negatives):
        """Sum of squares of the batch's layer-0 user, positive and negative rows."""
        if self._row_sparse:
            items = self._item_rows(torch.cat([positives, negatives.reshape(-1)]))
            return self.user_embedding(users).pow(2).sum() + items.pow(2).sum()
        items = ItemTable.rows(torch.cat([positives, negatives.reshape(-1)]))
        return (self.user_embedding.weight.index_select(0, users).pow(2).sum()
                + self.item_table.weight.index_select(0, items).pow(2).sum())
