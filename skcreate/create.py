"""CREATERecommender: joint sequence + graph training with cross-view alignment."""

import warnings

import torch

from .batches import EdgeBatches, JointBatches, KeyedBatches, MaskedSequenceBatches
from .graph import check_graph_size
from .neural import check_bool, check_choice, check_param, seeded_generator
from .nn.create import CREATEModel
from .nn.graph_model import GraphModel
from .nn.registry import ALIGNMENTS, GRAPH_ENCODERS
from .nn.sequence_model import SequenceModel
from .sequential import SASRecRecommender
from .training import Stage

__all__ = ["CREATERecommender", "inactive_params", "WARMUP_PER_EPOCH", "WARMUP_MIN",
           "WARMUP_MAX"]

#: Warm-up epochs per joint epoch under ``warmup_epochs="auto"``...
WARMUP_PER_EPOCH = 3
#: ... at least (short fits gain most from the warm-up) ...
WARMUP_MIN = 20
#: ... and at most (reached at the default 20 joint epochs).
WARMUP_MAX = 60

# what the joint network feeds the alignment, by estimator parameter and CREATEModel argument
_ALIGNMENT_INPUTS = {"alignment_positions": "positions", "alignment_graph_view": "graph_view",
                     "alignment_stop_gradient": "stop_gradient"}


def inactive_params(estimator):
    """Flat parameters of a CREATE estimator that have no effect under its other parameters.

    A built-in graph encoder or alignment reads the flat parameters named like its constructor
    arguments; those of the other built-ins (or all of them, for a passed instance) are
    inactive, and so are ``alignment_weight`` and the ``alignment_*`` input options without an
    alignment. Tuning scripts skip sweeps over them.

    Examples
    --------
    >>> from skcreate import CREATERecommender
    >>> sorted(inactive_params(CREATERecommender(alignment="none")))[4:7]
    ['alignment_weight', 'barlow_lambda', 'constraint_weight']
    """
    params = estimator.get_params(deep=False)
    inactive = set()
    for name, registry in (("graph_encoder", GRAPH_ENCODERS), ("alignment", ALIGNMENTS)):
        chosen = params[name]
        used = set()
        if isinstance(chosen, str) and registry.entries[chosen] is not None:
            used = set(registry.entries[chosen]._get_param_names())
        for cls in registry.entries.values():
            if cls is not None:
                inactive |= set(cls._get_param_names()) - used
    if params["alignment"] == "none":
        inactive |= set(_ALIGNMENT_INPUTS) | {"alignment_weight", "alignment_batch_size"}
    # the transformer's own parameters act whatever the parts (n_factors: the table width)
    return (inactive & set(params)) - set(SASRecRecommender._get_param_names())


class CREATERecommender(SASRecRecommender):
    """CREATE: Cross-Representation Knowledge Transfer (arXiv 2602.23471).

    A sequence encoder (SASRec, or BERT4Rec) and a graph encoder (LightGCN or UltraGCN) share one
    item table. Training minimises ``L_local + graph_weight * L_global + alignment_weight *
    L_align``: the next-item (or masked-item) cross-entropy, the graph's own loss on the graph
    of each user's recent interactions, and an alignment of each user's transformer state with its
    graph embedding (the paper's Barlow Twins, or InfoNCE). The first
    ``warmup_epochs`` epochs train the graph branch alone, so the shared items start from
    graph-aware positions. At inference only the sequence encoder runs, with the graph-enriched
    item table: no user embedding, no graph pass, and any history is served exactly like a
    fitted user's.

    Parameters
    ----------
    n_factors, n_blocks, n_heads, max_len, dropout, norm_first
        Sequence encoder, as in :class:`~skcreate.sequential.SASRecRecommender`.
    sequence_encoder : {"sasrec", "bert4rec"}, default="sasrec"
        Causal next-item SASRec, or bidirectional BERT4Rec with masked-item training and a
        [MASK] token appended at inference.
    mask_prob : float, default=0.2
        Share of items masked per sequence (BERT4Rec).
    graph_encoder : {"lightgcn", "ultragcn"} or skcreate.nn.GraphEncoder, default="lightgcn"
        Graph branch: a built-in name, configured by the flat parameters below
        (``n_layers``, ``normalize_layers``, ``edge_dropout`` for LightGCN; the UltraGCN
        options for UltraGCN), or an instance of a :class:`~skcreate.nn.GraphEncoder`
        subclass (a user's own; its parameters are reachable as ``graph_encoder__<name>``
        and the flat encoder options do not apply). See ``docs/extending.md``.
    n_layers : int, default=1
        LightGCN propagation hops. Each hop adds a sparse product to every joint step,
        forward and backward; on Amazon Beauty's validation split one hop scores as well as
        two (NDCG@10 2.16 %) with joint epochs about a quarter shorter.
    normalize_layers : bool, default=False
        Row-L2-normalise LightGCN's propagated layers.
    edge_dropout : float, default=0.0
        LightGCN edge dropout.
    constraint_weight, item_weight, n_neighbours, n_negatives, negative_weight
        UltraGCN options, as in :class:`~skcreate.graph.UltraGCNRecommender`.
    graph_last_n : int, default=None
        Build the graph from each user's last ``graph_last_n`` interactions.
    graph_last_frac : float, default=0.4
        ... or from the last share of them (the paper's best graph uses ~40 %).
    graph_batch_size : int, default=2048
        Edges per step in the graph loss.
    regularization : float, default=1e-2
        L2 on the graph batch's layer-0 embeddings. Stronger than LightGCN's usual 1e-4 on
        purpose: with 1e-4 the BPR warm-up inflates the shared item rows (median norm 3.3
        after 60 epochs on Amazon Beauty, against 1.3 in a trained SASRec), the transformer's
        input, which scales items by sqrt(n_factors), drowns its position embeddings, and
        joint training starts slowly and peaks lower.
    warmup_epochs : int or "auto", default="auto"
        Graph-only epochs before joint training (not counted in ``epochs``). ``"auto"`` runs
        3 per joint epoch, at least 20 and at most 60 (:data:`WARMUP_PER_EPOCH`,
        :data:`WARMUP_MIN`, :data:`WARMUP_MAX`): 60 at the default 20 joint epochs, 20 for a
        short fit such as ``epochs=2``, where a fixed 60 would take most of its time; none
        when ``graph_weight=0``. Longer warm-ups score higher even on short fits (Amazon Beauty
        validation NDCG@10 at ``epochs=2``, 3 seeds: 0.65 % without, 1.43 % with 20, 1.72 %
        with 60 warm-up epochs; on MovieLens-100K 20 are as good as 60;
        ``benchmarks/results/warmup.md``), so give an integer (the paper's best are 10-50) to
        spend more on a short fit. A warm-up epoch costs a few percent of a joint one on
        Amazon Beauty, more on small, dense data. ``warmup_epochs_`` holds the number run.
    graph_weight : float, default=0.5
        Weight of the graph loss (w_global) in joint training. During the warm-up the graph
        loss is the only term, and Adam's steps do not depend on its scale.
    alignment : {"barlow", "bt-sr", "contrastive", "none"} or skcreate.nn.Alignment, \
default="barlow"
        Cross-view alignment: Barlow Twins (the paper's choice, with ``barlow_lambda``), Barlow
        Twins after the BT-SR recipe (:class:`~skcreate.nn.ProjectedBarlowTwins`: normalised
        views, a projector of ``projector_dim`` units, the loss per dimension; use an
        ``alignment_weight`` near 0.25), InfoNCE with in-batch negatives (with
        ``temperature``), none, or an instance of an :class:`~skcreate.nn.Alignment`
        subclass (its parameters are reachable as ``alignment__<name>``).
        ``alignment_weight`` weighs it in every case.
    alignment_weight : float, default=0.05
        Weight of the alignment loss (w_BT). With 64 factors the Barlow Twins loss starts near
        64 and InfoNCE near 2 log(batch_size); try 0.1-0.3 with ``alignment="contrastive"``.
    barlow_lambda : float, default=5e-3
        Off-diagonal weight of the Barlow Twins loss.
    temperature : float, default=0.2
        InfoNCE temperature (``alignment="contrastive"``).
    projector_dim : int, default=64
        Projector width of ``alignment="bt-sr"``.
    alignment_positions : {"last", "all"}, default="last"
        Align each user's transformer state at the last position (the paper's), or at every
        position, each paired with the user's graph embedding.
    alignment_graph_view : {"propagated", "layer0"}, default="propagated"
        Align with the user's propagated graph embedding, or with its layer-0 row.
    alignment_stop_gradient : {None, "sequence", "graph"}, default=None
        The side the alignment does not train (``"graph"``: the graph embedding is a fixed
        target for the transformer).
    alignment_batch_size : int, default=None
        Users per alignment batch, at least ``batch_size``: each step adds users drawn at
        random to the batch's (their transformer states are computed for the alignment
        alone), since Barlow Twins' correlation estimates want a batch well above the width.
        None aligns the batch's users only.
    epochs : int, default=20
        Joint epochs (the maximum with early stopping), not counting the warm-up. More than
        SASRec's 15: the graph loss keeps regularising the shared item table, and on Amazon
        Beauty's validation split CREATE still improves until epochs 16-19 where SASRec peaks
        at 14.
    learning_rate, batch_size, early_stopping, retrain_on_all, patience, validation_quantile
        As in :class:`~skcreate.sequential.SASRecRecommender`; a retrain keeps the warm-up and
        cuts the joint epochs to ``best_epoch_``.
    weight_decay, loss, sce_buckets, sce_bucket_size_x, sce_bucket_size_y, sce_candidates
        As in :class:`~skcreate.sequential.SASRecRecommender` (the graph branch reads the
        whole item table, so SCE's item-table updates stay dense).
    filter_seen, device, random_state, verbose, callbacks, on_interrupt, distributed
        As in :class:`~skcreate.sequential.SASRecRecommender`.
    checkpoint_path, checkpoint_every
        As in :class:`~skcreate.sequential.SASRecRecommender`; the checkpoint covers the
        warm-up and the joint epochs alike.
    precision, user_col, item_col, time_col
        As in :class:`~skcreate.sequential.SASRecRecommender`.

    Attributes
    ----------
    module_ : skcreate.nn.CREATEModel
        Both branches and the alignment; ``module_.sequence`` serves recommendations.
    loss_curve_ : list of float
        Total loss per epoch (warm-up epochs first).
    loss_terms_ : dict of str to list of float
        ``"local"``, ``"global"`` and ``"align"`` per epoch (0 where a term is off).
    validation_scores_ : list of float
        Validation NDCG@10 per epoch (early stopping only; NaN during warm-up).
    warmup_epochs_ : int
        Epochs of warm-up run, the boundary in the curves.
    best_epoch_, n_epochs_ : int
        Joint epochs of the kept weights and joint epochs run (warm-up excluded, like
        ``epochs``).
    epoch_seconds_ : list of float
        Training seconds of every epoch, warm-up first.
    epoch_stages_ : list of str
        ``"warmup"`` or ``"joint"`` for every epoch.

    Examples
    --------
    >>> from skcreate.datasets import make_interactions
    >>> from skcreate.create import CREATERecommender
    >>> df = make_interactions(n_users=100, n_items=40, random_state=0)
    >>> model = CREATERecommender(n_factors=16, warmup_epochs=1, epochs=2,
    ...                           random_state=0).fit(df)
    >>> sorted(model.loss_terms_)
    ['align', 'global', 'local']
    >>> model.recommend(df[df.user_id == 3], k=3)["rank"].tolist()
    [1, 2, 3]
    """

    def __init__(self, n_factors=64, n_blocks=2, n_heads=1, max_len=50, dropout=0.3,
                 norm_first=True, sequence_encoder="sasrec", mask_prob=0.2,
                 graph_encoder="lightgcn", n_layers=1, normalize_layers=False, edge_dropout=0.0,
                 constraint_weight=1.0, item_weight=1.0, n_neighbours=10, n_negatives=10,
                 negative_weight=10.0, graph_last_n=None, graph_last_frac=0.4,
                 graph_batch_size=2048, regularization=1e-2, warmup_epochs="auto",
                 graph_weight=0.5, alignment="barlow", alignment_weight=0.05,
                 barlow_lambda=5e-3, temperature=0.2, projector_dim=64,
                 alignment_positions="last", alignment_graph_view="propagated",
                 alignment_stop_gradient=None, alignment_batch_size=None, learning_rate=2e-3,
                 batch_size=128, epochs=20, early_stopping=False, retrain_on_all=False,
                 patience=5, validation_quantile=0.9,
                 weight_decay=0.0, loss="ce", sce_buckets=None, sce_bucket_size_x=None,
                 sce_bucket_size_y=256, sce_candidates=65536, filter_seen=True, device="cpu",
                 random_state=None, verbose=False, callbacks=None, on_interrupt="raise",
                 checkpoint_path=None, checkpoint_every=1, distributed="auto", precision="fp32",
                 user_col="user_id",
                 item_col="item_id", time_col="timestamp"):
        super().__init__(
            n_factors=n_factors, n_blocks=n_blocks, n_heads=n_heads, max_len=max_len,
            dropout=dropout, norm_first=norm_first, learning_rate=learning_rate,
            batch_size=batch_size, epochs=epochs, early_stopping=early_stopping,
            retrain_on_all=retrain_on_all,
            patience=patience, validation_quantile=validation_quantile,
            weight_decay=weight_decay, loss=loss, sce_buckets=sce_buckets,
            sce_bucket_size_x=sce_bucket_size_x, sce_bucket_size_y=sce_bucket_size_y,
            sce_candidates=sce_candidates,
            filter_seen=filter_seen, device=device, random_state=random_state, verbose=verbose,
            callbacks=callbacks, on_interrupt=on_interrupt, checkpoint_path=checkpoint_path,
            checkpoint_every=checkpoint_every, distributed=distributed, precision=precision,
            user_col=user_col,
            item_col=item_col, time_col=time_col)
        self.sequence_encoder = sequence_encoder
        self.mask_prob = mask_prob
        self.graph_encoder = graph_encoder
        self.n_layers = n_layers
        self.normalize_layers = normalize_layers
        self.edge_dropout = edge_dropout
        self.constraint_weight = constraint_weight
        self.item_weight = item_weight
        self.n_neighbours = n_neighbours
        self.n_negatives = n_negatives
        self.negative_weight = negative_weight
        self.graph_last_n = graph_last_n
        self.graph_last_frac = graph_last_frac
        self.graph_batch_size = graph_batch_size
        self.regularization = regularization
        self.warmup_epochs = warmup_epochs
        self.graph_weight = graph_weight
        self.alignment = alignment
        self.alignment_weight = alignment_weight
        self.barlow_lambda = barlow_lambda
        self.temperature = temperature
        self.projector_dim = projector_dim
        self.alignment_positions = alignment_positions
        self.alignment_graph_view = alignment_graph_view
        self.alignment_stop_gradient = alignment_stop_gradient
        self.alignment_batch_size = alignment_batch_size

    def _check_model_params(self):
        self._check_sequence_params()
        check_choice(self, "sequence_encoder", ("sasrec", "bert4rec"))
        GRAPH_ENCODERS.check("graph_encoder", self.graph_encoder)
        ALIGNMENTS.check("alignment", self.alignment)
        check_graph_size(self)
        check_param(self, "n_layers", int, 0)
        if not self._auto_warmup:
            try:
                check_param(self, "warmup_epochs", int, 0)
            except ValueError:
                raise ValueError(f"warmup_epochs must be 'auto' or an integer >= 0, got "
                                 f"{self.warmup_epochs!r}.") from None
        for name in ("graph_batch_size", "n_neighbours", "n_negatives"):
            check_param(self, name, int, 1)
        for name in ("graph_weight", "alignment_weight", "barlow_lambda", "regularization",
                     "constraint_weight", "item_weight", "negative_weight"):
            check_param(self, name, float, 0)
        check_param(self, "temperature", float, 0, low_open=True)
        check_param(self, "projector_dim", int, 1)
        check_choice(self, "alignment_positions", ("last", "all"))
        check_choice(self, "alignment_graph_view", ("propagated", "layer0"))
        check_choice(self, "alignment_stop_gradient", (None, "sequence", "graph"))
        if self.alignment_batch_size is not None:
            check_param(self, "alignment_batch_size", int, self.batch_size)
        check_param(self, "mask_prob", float, 0, 1, low_open=True)
        check_param(self, "edge_dropout", float, 0, 1, high_open=True)
        check_bool(self, "normalize_layers")
        if self.sequence_encoder == "bert4rec" and self.max_len < 2:
            raise ValueError(f"sequence_encoder='bert4rec' appends a [MASK] to the history and "
                             f"needs max_len >= 2, got max_len={self.max_len}.")
        if self._warmup_epochs and self.graph_weight == 0:
            raise ValueError("warmup_epochs > 0 trains the graph loss alone, which needs "
                             "graph_weight > 0.")
        if self._aligned and self.batch_size < 2:
            raise ValueError(f"the alignment standardises over a batch of users and needs "
                             f"batch_size >= 2, got batch_size={self.batch_size}; or set "
                             "alignment='none'.")
        defaults = CREATERecommender().get_params(deep=False)
        ignored = [name for name in sorted(inactive_params(self))
                   if getattr(self, name) != defaults[name]]
        if ignored:
            # an option set for a part that is not there (a user's encoder, no alignment)
            warnings.warn(f"{', '.join(f'{name}={getattr(self, name)!r}' for name in ignored)} "
                          f"ha{'s' if len(ignored) == 1 else 've'} no effect with "
                          f"graph_encoder={self.graph_encoder!r} and "
                          f"alignment={self.alignment!r}: they configure built-in parts not in "
                          "use (a part passed as an object takes its options as "
                          "graph_encoder__<name> or alignment__<name>).",
                          UserWarning, stacklevel=5)

    # the graph branch reads the whole item table every step: dense gradients
    _sparse_table = False

    @property
    def _auto_warmup(self):
        return isinstance(self.warmup_epochs, str) and self.warmup_epochs == "auto"

    @property
    def _warmup_epochs(self):
        """Warm-up epochs this fit runs (``"auto"`` resolved against ``epochs``)."""
        if not self._auto_warmup:
            return self.warmup_epochs
        # without a graph loss there is nothing to warm up
        if self.graph_weight == 0:
            return 0
        return min(max(WARMUP_PER_EPOCH * self.epochs, WARMUP_MIN), WARMUP_MAX)

    @property
    def _aligned(self):
        return self.alignment != "none" and self.alignment_weight > 0

    def _sequence_model(self, data, rng):
        """The sequence step (SASRec or BERT4Rec) and its batches."""
        if self.sequence_encoder == "sasrec":
            model = SequenceModel(self._make_encoder(data.n_items), self._local_loss())
            return model, self._sequence_batches(data, rng)
        encoder = self._make_encoder(data.n_items, causal=False, extra_tokens=1)
        mask = encoder.item_table.token(0)
        batches = MaskedSequenceBatches(data.last_items(self.max_len), self.batch_size, rng,
                                        mask, mask_prob=self.mask_prob)
        return SequenceModel(encoder, self._local_loss(), mask_token=mask), batches

    def _build(self, data, rng):
        sequence, sequence_batches = self._sequence_model(data, rng)
        user_items, edges = data.graph(self.graph_last_n, self.graph_last_frac)
        params = self.get_params(deep=False)
        # a side stream for the graph's initialisation leaves the sequence branch's random
        # draws as in plain SASRec, so switching the graph off reproduces SASRec exactly
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch.initial_seed() + 1)
            encoder = GRAPH_ENCODERS.make(self.graph_encoder, params)
            encoder.build(user_items, sequence.item_table)
        graph = GraphModel(encoder, self.regularization, seeded_generator(1))
        alignment = ALIGNMENTS.make(self.alignment, params) if self._aligned else None
        model = CREATEModel(sequence, graph, alignment,
                            **{arg: params[name] for name, arg in _ALIGNMENT_INPUTS.items()})
        edges = EdgeBatches.for_encoder(encoder, edges, self.graph_batch_size, rng)
        warmup = Stage("warmup", self._warmup_epochs, KeyedBatches(edges, "edges"),
                       {"global": self.graph_weight}, validate=False)
        extra = 0 if self.alignment_batch_size is None or not self._aligned \
            else self.alignment_batch_size - self.batch_size
        joint = Stage("joint", self.epochs,
                      JointBatches(sequence_batches, edges if self.graph_weight > 0 else None,
                                   alignment_users=extra),
                      {"local": 1.0, "global": self.graph_weight,
                       "align": self.alignment_weight})
        return model, [warmup, joint]

    def _fit(self, data):
        super()._fit(data)
        self.warmup_epochs_ = self.epoch_stages_.count("warmup")

    @property
    def _network(self):
        return self.module_.sequence
