"""Graph estimators: LightGCN and UltraGCN over the user-item graph."""

import weakref
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ..training.batches import EdgeBatches
from .neural import NeuralRecommender, seeded_generator
from ..nn.graph_encoder import GraphEncoder
from ..nn.graph_model import GraphModel
from ..nn.lightgcn import LightGCNEncoder
from ..nn.registry import Shortcuts
from ..nn.scoring import EmbeddingScorer
from ..nn.sparse import sparse_tensor
from ..nn.ultragcn import UltraGCNEncoder
from ..training import Stage

__all__ = ["GraphRecommender", "LightGCNRecommender", "UltraGCNRecommender", "GRAPH_ENCODERS"]

#: what ``GraphRecommender(graph_encoder=...)`` accepts by name: the single-model estimators'
#: width
GRAPH_ENCODERS = Shortcuts(GraphEncoder, {"lightgcn": lambda: LightGCNEncoder(n_factors=64),
                                          "ultragcn": lambda: UltraGCNEncoder(n_factors=64)})


#: what a graph of each user's recent interactions is built from (None: all of them)
GRAPH_SIZE_CONSTRAINTS = {
    "graph_last_n": [None, Interval(Integral, 1, None, closed="left")],
    "graph_last_frac": [None, Interval(Real, 0, 1, closed="right")],
}

#: graph encoder options that choose how a step is computed, not what the model is: they may
#: change between fit and partial_fit (their "auto" defaults are decided again for the grown
#: graph, and a model fitted before they existed updates with them)
GRAPH_RUN_OPTIONS = ("propagation", "row_sparse", "fanout", "walks")


class _GraphRecommender(NeuralRecommender):
    """Shared fit and fold-in of the graph estimators."""

    _free_params = NeuralRecommender._free_params | set(GRAPH_RUN_OPTIONS)

    _parameter_constraints: dict = {
        **NeuralRecommender._parameter_constraints,
        **GRAPH_SIZE_CONSTRAINTS,
        "regularization": [Interval(Real, 0, None, closed="left")],
    }

    _encoder_class = None

    def _make_encoder(self):
        """A fresh, unbuilt encoder: the model's class with the estimator's options."""
        params = self.get_params(deep=False)
        return self._encoder_class(**{name: params[name] for name in
                                      self._encoder_class._get_param_names()})

    def _build(self, data, rng):
        user_items, edges = data.graph(self.graph_last_n, self.graph_last_frac)
        encoder = self._make_encoder()
        model = GraphModel(encoder.build(user_items), self.regularization, seeded_generator())
        batches = EdgeBatches.for_encoder(encoder, edges, self.batch_size, rng)
        return model, [Stage("train", self.epochs, batches)]

    def _propagated(self):
        """The encoder's propagated (users, items), kept while the graph, the parameters and
        the mode stay the same: every serving call reads them, and on a large graph one
        propagation costs far more than scoring a few users."""
        module = self.module_
        watched = [*module.parameters(), *module.buffers()]
        if getattr(module.encoder, "adjacency", None) is not None:
            watched.append(module.encoder.adjacency)
        # weak references: a new tensor (a grown table) cannot pass for a freed one of the same
        # id; versions count in-place changes (optimiser steps, load_state_dict), devices and
        # addresses catch a parameter's data swapped by a move
        key = (module.training, [(tensor._version, tensor.device,
                                  tensor.data_ptr() if tensor.layout == torch.strided else 0)
                                 for tensor in watched])
        cached = self.__dict__.get("_propagation")
        # equal keys have as many entries as tensors watched
        if cached is not None and cached[1] == key \
                and all(ref() is tensor for ref, tensor in zip(cached[0], watched)):
            return cached[2]
        with torch.no_grad():
            embeddings = module.encoder.propagate()
        self._propagation = ([weakref.ref(tensor) for tensor in watched], key, embeddings)
        return embeddings

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_propagation", None)
        return state

    def _score(self, data, rows):
        users, items = self._propagated()
        known = self.train_user_ids_.get_indexer(data.user_ids[rows])
        # unseen users: normalised sum of their history items' propagated embeddings
        history = data.to_csr(rows)
        history = history.multiply(1.0 / np.maximum(history.sum(1), 1)).tocoo()
        folded = torch.sparse.mm(sparse_tensor(history).to(users.device), items)
        fitted = torch.as_tensor(known >= 0, device=users.device)
        state = torch.where(fitted[:, None], users[torch.as_tensor(np.maximum(known, 0))],
                            folded)
        return state @ items.T

    def _serving_scorer(self):
        users, items = self._propagated()
        return EmbeddingScorer(items.cpu(), users.cpu()), self.train_user_ids_


class LightGCNRecommender(_GraphRecommender):
    """LightGCN (He et al., 2020) trained with BPR.

    Users seen at fit are served with their propagated embedding; a user unseen at fit is
    folded in as the mean of its history items' propagated embeddings, so any history can be
    served without refitting.

    Parameters
    ----------
    n_factors : int, default=64
        Embedding width.
    n_layers : int, default=3
        Propagation hops.
    normalize_layers : bool, default=False
        Row-L2-normalise each propagated layer.
    edge_dropout : float, default=0.0
        Share of edges dropped at each training step.
    propagation : {"auto", "full", "subgraph", "historical"}, default="auto"
        How a training step propagates: over the K-hop neighbourhood of its batch only
        ("subgraph", same loss and gradients as "full", which propagates the whole graph),
        "historical": one hop, deeper layers read from a propagation refreshed every epoch
        (LTGNN's design; with ``fanout`` and ``row_sparse``, a step's cost does not grow with
        the graph), or "auto": on a CPU, on graphs of more than 250,000 user-item edges
        "historical" with a fanout of 10 (unless ``fanout`` is given), on smaller ones the
        neighbourhood where it is the smaller part of the graph (on a GPU, "full"). See
        :class:`~skcreate.nn.LightGCNEncoder`.
    row_sparse : bool or "auto", default="auto"
        Row-sparse gradients of the rows a step reads and row-wise Adam updates
        (:class:`~skcreate.nn.LazyAdam`), so that a step's cost follows its neighbourhood, not
        the table sizes (see :class:`~skcreate.nn.LightGCNEncoder`); "auto": on graphs of more
        than 250,000 edges on a CPU. With both "auto", an epoch grows not much faster than
        the interactions beyond that size (LightGCN on 2 cores: 12.6 s at 1M interactions
        and 61 s at 3M, log-log slope 1.38 from 0.1M; exactly 70 s at 1M, slope 2.08;
        ``benchmarks/results/size-sweep-eighteenth.md``), and smaller graphs, Amazon
        Beauty's among them, train exactly.
    fanout : int, optional
        Neighbours each node aggregates per hop in a training step, sampled (unbiased), which
        bounds a step's neighbourhood whatever the graph's size; None takes all (exact).
        Serving propagates exactly.
    walks : int, optional
        Random walks per node for layers 2..K of a historical step; None takes the fanout,
        or 10. Fewer walks, cheaper steps: see :class:`~skcreate.nn.LightGCNEncoder`.
    regularization : float, default=1e-4
        L2 on the layer-0 embeddings of each batch.
    graph_last_n, graph_last_frac : int or float, default=None
        Build the graph from each user's last ``graph_last_n`` events or last share
        ``graph_last_frac`` of them; all events when None.
    learning_rate : float, default=5e-3
        Adam step size.
    batch_size : int, default=2048
        Edges per step.
    epochs : int, default=20
        Training epochs (the maximum with early stopping). Early stopping on Amazon Beauty's
        validation split chose 20; 60 scored lower on its test users (NDCG@10 1.07 % against
        1.26 %).
    weight_decay : float, default=0.0
        Adam L2 penalty.
    filter_seen : bool, default=True
        Exclude each user's history items.
    random_state : int, RandomState instance or None, default=None
    trainer : skcreate.training.Trainer, default=None
        How the fit runs (device, early stopping, checkpoints...), as in
        :class:`~skcreate.estimators.sequential.SASRecRecommender`.
    user_col, item_col, time_col : str
        Column names of the interaction frames.

    Attributes
    ----------
    module_ : skcreate.nn.GraphModel
        The trained network; ``module_.encoder`` is a :class:`~skcreate.nn.LightGCNEncoder`.
    train_user_ids_ : pandas.Index
        Users of the training graph.
    loss_curve_, validation_scores_, best_epoch_, n_epochs_
        As in ``SASRecRecommender``.

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.graph import LightGCNRecommender
    >>> df = make_interactions(n_users=100, n_items=40, random_state=0)
    >>> model = LightGCNRecommender(n_factors=16, epochs=2, random_state=0).fit(df)
    >>> model.recommend(df[df.user_id == 3], k=3)["rank"].tolist()
    [1, 2, 3]
    """

    _encoder_class = LightGCNEncoder

    def __init__(self, n_factors=64, n_layers=3, normalize_layers=False, edge_dropout=0.0,
                 propagation="auto", row_sparse="auto", fanout=None, walks=None,
                 regularization=1e-4, graph_last_n=None, graph_last_frac=None,
                 learning_rate=5e-3, batch_size=2048, epochs=20, weight_decay=0.0,
                 filter_seen=True, random_state=None, trainer=None,
                 user_col="user_id", item_col="item_id", time_col="timestamp"):
        self.n_factors = n_factors
        self.n_layers = n_layers
        self.normalize_layers = normalize_layers
        self.edge_dropout = edge_dropout
        self.propagation = propagation
        self.row_sparse = row_sparse
        self.fanout = fanout
        self.walks = walks
        self.regularization = regularization
        self.graph_last_n = graph_last_n
        self.graph_last_frac = graph_last_frac
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.filter_seen = filter_seen
        self.random_state = random_state
        self.trainer = trainer
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    # the model's options are its encoder's, declared there
    _parameter_constraints: dict = {
        **_GraphRecommender._parameter_constraints,
        **LightGCNEncoder._parameter_constraints,
        "n_factors": [Interval(Integral, 1, None, closed="left")],
    }



class UltraGCNRecommender(_GraphRecommender):
    """UltraGCN (Mao et al., 2021): LightGCN's infinite-layer limit as constraint losses.

    Served like :class:`LightGCNRecommender` (fitted embeddings for seen users, mean of history
    item embeddings for unseen ones).

    Parameters
    ----------
    n_factors : int, default=64
        Embedding width.
    constraint_weight : float, default=1.0
        Weight of the degree-based user-item constraint (lambda).
    item_weight : float, default=1.0
        Weight of the item-item neighbour constraint (gamma).
    n_neighbours : int, default=10
        Co-occurrence neighbours per item in the item-item constraint.
    n_negatives : int, default=10
        Negatives sampled per positive.
    negative_weight : float, default=10.0
        Weight of the negative terms.
    row_sparse : bool or "auto", default="auto"
        Row-sparse gradients and row-wise Adam updates, as in :class:`LightGCNRecommender`
        ("auto": on graphs of more than 250,000 edges on a CPU).
    regularization : float, default=1e-4
        L2 on the embeddings of each batch.
    graph_last_n, graph_last_frac : int or float, default=None
        As in :class:`LightGCNRecommender`.
    learning_rate : float, default=1e-2
        Adam step size.
    batch_size : int, default=1024
        Edges per step.
    epochs : int, default=20
    weight_decay, filter_seen, random_state, trainer, user_col, item_col, time_col
        As in :class:`LightGCNRecommender`.

    Attributes
    ----------
    module_ : skcreate.nn.GraphModel
        The trained network; ``module_.encoder`` is a :class:`~skcreate.nn.UltraGCNEncoder`.
    train_user_ids_ : pandas.Index
    loss_curve_, validation_scores_, best_epoch_, n_epochs_

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.graph import UltraGCNRecommender
    >>> df = make_interactions(n_users=100, n_items=40, random_state=0)
    >>> model = UltraGCNRecommender(n_factors=16, epochs=2, random_state=0).fit(df)
    >>> model.recommend(k=2)["rank"].max()
    np.int64(2)
    """

    _encoder_class = UltraGCNEncoder

    def __init__(self, n_factors=64, constraint_weight=1.0, item_weight=1.0, n_neighbours=10,
                 n_negatives=10, negative_weight=10.0, row_sparse="auto", regularization=1e-4,
                 graph_last_n=None, graph_last_frac=None, learning_rate=1e-2, batch_size=1024,
                 epochs=20, weight_decay=0.0, filter_seen=True, random_state=None, trainer=None,
                 user_col="user_id", item_col="item_id", time_col="timestamp"):
        self.n_factors = n_factors
        self.constraint_weight = constraint_weight
        self.item_weight = item_weight
        self.n_neighbours = n_neighbours
        self.n_negatives = n_negatives
        self.negative_weight = negative_weight
        self.row_sparse = row_sparse
        self.regularization = regularization
        self.graph_last_n = graph_last_n
        self.graph_last_frac = graph_last_frac
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.filter_seen = filter_seen
        self.random_state = random_state
        self.trainer = trainer
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    _parameter_constraints: dict = {
        **_GraphRecommender._parameter_constraints,
        **UltraGCNEncoder._parameter_constraints,
        "n_factors": [Interval(Integral, 1, None, closed="left")],
    }


class GraphRecommender(_GraphRecommender):
    """A graph encoder trained alone on the user-item graph: a built-in one or your own.

    What :class:`LightGCNRecommender` and :class:`UltraGCNRecommender` do for their encoder,
    for any :class:`~skcreate.nn.GraphEncoder`: the encoder's
    :meth:`~skcreate.nn.GraphEncoder.loss` on edge batches (with the negatives it asks for)
    plus ``regularization`` times its :meth:`~skcreate.nn.GraphEncoder.penalty`, served from
    its propagated embeddings (users unseen at fit folded in as the mean of their history
    items' embeddings). The encoder's own
    options, its width included, live on the encoder and are tuned as ``graph_encoder__<name>``.

    Parameters
    ----------
    graph_encoder : {"lightgcn", "ultragcn"} or skcreate.nn.GraphEncoder, default="lightgcn"
        The encoder, cloned at every fit (the object passed stays unbuilt). A name stands for
        the built-in encoder of 64 factors with its defaults (``LightGCNEncoder(n_factors=64)``);
        an instance must set its own width (``n_factors``), as there is no table to share.
    regularization : float, default=1e-4
        Weight of the encoder's penalty (L2 on the rows of each batch, for the built-ins).
    graph_last_n, graph_last_frac, learning_rate, batch_size, epochs
        As in :class:`LightGCNRecommender` (``learning_rate`` default 5e-3, ``batch_size``
        2048, ``epochs`` 20).
    weight_decay, filter_seen, random_state, trainer, user_col, item_col, time_col
        As in :class:`LightGCNRecommender`.

    Attributes
    ----------
    module_ : skcreate.nn.GraphModel
        The trained network; ``module_.encoder`` is the fitted clone of ``graph_encoder``.
    train_user_ids_ : pandas.Index
    loss_curve_, validation_scores_, best_epoch_, n_epochs_

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.graph import GraphRecommender
    >>> from skcreate.nn import LightGCNEncoder
    >>> df = make_interactions(n_users=100, n_items=40, random_state=0)
    >>> model = GraphRecommender(LightGCNEncoder(n_factors=16, n_layers=2), epochs=2,
    ...                          random_state=0).fit(df)
    >>> model.get_params()["graph_encoder__n_layers"], model.recommend(k=2)["rank"].max()
    (2, np.int64(2))
    """

    def __init__(self, graph_encoder="lightgcn", regularization=1e-4, graph_last_n=None,
                 graph_last_frac=None, learning_rate=5e-3, batch_size=2048, epochs=20,
                 weight_decay=0.0, filter_seen=True, random_state=None, trainer=None,
                 user_col="user_id", item_col="item_id", time_col="timestamp"):
        self.graph_encoder = graph_encoder
        self.regularization = regularization
        self.graph_last_n = graph_last_n
        self.graph_last_frac = graph_last_frac
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.filter_seen = filter_seen
        self.random_state = random_state
        self.trainer = trainer
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    _parts = {"graph_encoder": GRAPH_ENCODERS, **_GraphRecommender._parts}
    _free_params = _GraphRecommender._free_params | {
        f"graph_encoder__{name}" for name in GRAPH_RUN_OPTIONS}

    def _make_encoder(self):
        return GRAPH_ENCODERS.make(self.graph_encoder)
