"""CREATERecommender: joint sequence + graph training with cross-view alignment."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..data.interactions import check_bool, check_positive
from ..training.batches import EdgeBatches, JointBatches, KeyedBatches
from .graph import GRAPH_RUN_OPTIONS, GRAPH_SIZE_CONSTRAINTS
from .neural import NeuralRecommender, check_average_epochs, seeded_generator
from ..nn.alignment import Alignment, BarlowTwins, InfoNCE
from ..nn.create_model import CREATEModel
from ..nn.graph_encoder import GraphEncoder
from ..nn.graph_model import GraphModel
from ..nn.lightgcn import LightGCNEncoder
from ..nn.projected_barlow import ProjectedBarlowTwins
from ..nn.registry import Shortcuts
from ..nn.sasrec import BERT4RecEncoder, SASRecEncoder
from ..nn.ultragcn import UltraGCNEncoder
from .sequential import LOSSES, SASRecRecommender
from ..training import Stage

__all__ = ["CREATERecommender", "SEQUENCE_ENCODERS", "GRAPH_ENCODERS", "ALIGNMENTS",
           "WARMUP_PER_EPOCH", "WARMUP_MIN", "WARMUP_MAX", "LIGHT_EDGE_SHARE"]

#: Warm-up epochs per joint epoch under ``warmup_epochs="auto"``...
WARMUP_PER_EPOCH = 3
#: ... at least (short fits gain most from the warm-up) ...
WARMUP_MIN = 20
#: ... and at most (reached at the default 20 joint epochs).
WARMUP_MAX = 60
#: the share of ``graph_batch_size`` a "light" joint step trains on
LIGHT_EDGE_SHARE = 0.25

#: what the part parameters accept by name (the graph encoder: the paper's one propagation hop)
SEQUENCE_ENCODERS = Shortcuts(SASRecEncoder, {"sasrec": SASRecEncoder,
                                              "bert4rec": BERT4RecEncoder})
GRAPH_ENCODERS = Shortcuts(GraphEncoder, {"lightgcn": lambda: LightGCNEncoder(n_layers=1),
                                          "ultragcn": UltraGCNEncoder})
ALIGNMENTS = Shortcuts(Alignment, {"barlow": BarlowTwins, "bt-sr": ProjectedBarlowTwins,
                                   "contrastive": InfoNCE, "none": None})


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
    n_factors : int, default=64
        Width of the shared item table, so of both branches.
    sequence_encoder : {"sasrec", "bert4rec"} or skcreate.nn.SASRecEncoder, default="sasrec"
        The transformer: :class:`~skcreate.nn.SASRecEncoder` (``"sasrec"``: causal, trained
        on the next item) or :class:`~skcreate.nn.BERT4RecEncoder` (``"bert4rec"``:
        bidirectional, trained on masked items, a [MASK] token appended at inference). Its
        options (``n_blocks``, ``n_heads``, ``max_len``, ``dropout``, ``norm_first``; BERT4Rec's
        ``mask_prob``) are reached as ``sequence_encoder__<name>``; the defaults are
        :class:`~skcreate.estimators.sequential.SASRecRecommender`'s.
    graph_encoder : {"lightgcn", "ultragcn"} or skcreate.nn.GraphEncoder, default="lightgcn"
        Graph branch, sharing the item table (its ``n_factors`` must be None): a
        :class:`~skcreate.nn.LightGCNEncoder`, :class:`~skcreate.nn.UltraGCNEncoder` or a
        user's own :class:`~skcreate.nn.GraphEncoder` (see ``docs/extending.md``). Its options
        are its own and are reached as ``graph_encoder__<name>``. ``"lightgcn"`` stands for
        ``LightGCNEncoder(n_layers=1)``: each hop adds a sparse product to every joint step,
        forward and backward, and on Amazon Beauty's validation split one hop scores as well as
        two (NDCG@10 2.16 %) with joint epochs about a quarter shorter; ``"ultragcn"`` for
        ``UltraGCNEncoder()``. Their ``row_sparse`` and LightGCN's ``propagation`` default
        to "auto": on a CPU, on graphs of more than 250,000 user-item edges
        (``large_graph``), a step reads and updates only the rows of its nodes and sampled
        neighbours, so that a warm-up epoch grows little faster than the interactions (5.9 s
        at 3M interactions on 2 cores, a log-log slope of 1.06 from 0.1M; exactly, 5.8 s
        already at 1M, slope 1.67; ``benchmarks/results/size-sweep-eighteenth.md``); smaller
        graphs, Amazon Beauty's among them, train exactly. With a
        row-sparse encoder and ``loss="sce"`` a joint step reads rows of the shared item
        table: its gradient is row-sparse and Adam updates only the rows the step read, as in
        SASRec with SCE, so the step's cost no longer grows with the catalogue. Full CE, or a
        step that propagates the whole graph, reads the table whole, and its gradient is
        dense.
    graph_last_n : int, default=None
        Build the graph from each user's last ``graph_last_n`` interactions.
    graph_last_frac : float, default=0.4
        ... or from the last share of them (the paper's best graph uses ~40 %).
    graph_batch_size : int, default=2048
        Edges per step in the graph loss.
    joint_graph_step : {"auto", "full", "light"}, default="auto"
        How a joint step trains the graph loss. "full": on ``graph_batch_size`` edges, as a
        warm-up step. "light": on a quarter of them (:data:`LIGHT_EDGE_SHARE`), and where the
        graph encoder's steps are historical (LightGCN's scalable mode, ``own_rows_step``)
        its gradients reach only the layer-0 rows of the step's own users and items, not
        their neighbours' (the warm-up's steps: ``warmup_graph_step``). With
        ``loss="sce"`` on 2 cores a joint step then cost 1.12-1.13x a SASRec step at 1M
        synthetic interactions (1.48-1.50x "full") and 1.20x at 3M (1.64x) when "light" was
        added, and a joint epoch costs 1.05x a SASRec-SCE epoch at 1M and 1.11x at 3M with
        today's steps (``size-sweep-eighteenth.md``); on Amazon
        Beauty, the scalable mode forced, NDCG@10 was 1.5 % lower on average, within the
        seeds' spread (test split 2.12 ± 0.06 % against 2.15 ± 0.02 %, validation 1.99 ±
        0.11 % against 2.02 ± 0.06 %; 3 seeds, ``benchmarks/results/create-light-joint-*``).
        "auto": "light" where the graph encoder's steps are historical (on a CPU, graphs of
        more than ``large_graph`` edges), "full" otherwise, so Amazon Beauty trains "full".
    warmup_graph_step : {"auto", "full", "light"}, default="auto"
        How a warm-up step trains. "full": its gradients reach the layer-0 rows its graph
        encoder read. "light": where the encoder's steps are historical (``own_rows_step``),
        only the rows of the step's own users and items, on all ``graph_batch_size`` edges:
        the same loss, and a step whose updated rows barely grow with the graph (about 6,000
        at 1M and 3M synthetic interactions, against 31,000 and 37,000). On 2 cores a warm-up
        epoch with the defaults took 3.5 s instead of 7.3 at 1M and 12.2 s instead of 26.1 at
        3M when "light" was added, a log-log slope of 1.12 from 0.1M instead of 1.40 (1.9 s
        and 5.9 s, slope 1.06, with today's steps); on Amazon Beauty, the
        scalable mode forced, NDCG@10 was 1.98 ± 0.04 % against 1.99 ± 0.11 % (validation,
        3 seeds, ``benchmarks/results/create-light-warmup-validation``). "auto": "light" where
        the encoder's steps are historical (on a CPU, graphs of more than ``large_graph``
        edges), "full" otherwise, so Amazon Beauty trains "full".
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
        Cross-view alignment: :class:`~skcreate.nn.BarlowTwins` (``"barlow"``, the paper's
        choice), :class:`~skcreate.nn.ProjectedBarlowTwins` (``"bt-sr"``: Barlow Twins after
        the BT-SR recipe, normalised views, a projector, the loss per dimension; use an
        ``alignment_weight`` near 0.25), :class:`~skcreate.nn.InfoNCE` (``"contrastive"``,
        in-batch negatives), ``"none"``, or a user's own :class:`~skcreate.nn.Alignment`.
        Its options, what it aligns included (``positions``, ``graph_view``,
        ``stop_gradient``), are reached as ``alignment__<name>``.
    alignment_weight : float, default=0.05
        Weight of the alignment loss (w_BT). With 64 factors the Barlow Twins loss starts near
        64 and InfoNCE near 2 log(batch_size); try 0.1-0.3 with ``alignment="contrastive"``.
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
    learning_rate, batch_size
        As in :class:`~skcreate.estimators.sequential.SASRecRecommender`.
    weight_decay, loss
        As in :class:`~skcreate.estimators.sequential.SASRecRecommender`; SCE's item-table
        updates are row-sparse only where the graph encoder's are (see ``graph_encoder``).
    filter_seen, random_state, user_col, item_col, time_col
        As in :class:`~skcreate.estimators.sequential.SASRecRecommender`.
    trainer : skcreate.training.Trainer, default=None
        How the fit runs, as in :class:`~skcreate.estimators.sequential.SASRecRecommender`: early
        stopping validates the joint epochs (a retrain on all the data keeps the warm-up and
        cuts the joint epochs to ``best_epoch_``); a checkpoint covers the warm-up and the
        joint epochs alike.

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
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.create import CREATERecommender
    >>> df = make_interactions(n_users=100, n_items=40, random_state=0)
    >>> model = CREATERecommender(n_factors=16, warmup_epochs=1, epochs=2,
    ...                           random_state=0).fit(df)
    >>> sorted(model.loss_terms_)
    ['align', 'global', 'local']
    >>> model.recommend(df[df.user_id == 3], k=3)["rank"].tolist()
    [1, 2, 3]
    """

    def __init__(self, n_factors=64, sequence_encoder="sasrec", graph_encoder="lightgcn",
                 graph_last_n=None, graph_last_frac=0.4, graph_batch_size=2048,
                 joint_graph_step="auto", warmup_graph_step="auto", regularization=1e-2,
                 warmup_epochs="auto", graph_weight=0.5, alignment="barlow", alignment_weight=0.05,
                 alignment_batch_size=None, learning_rate=2e-3,
                 batch_size=128, epochs=20, weight_decay=0.0, loss="ce", filter_seen=True,
                 random_state=None, trainer=None, user_col="user_id", item_col="item_id",
                 time_col="timestamp"):
        self.n_factors = n_factors
        self.sequence_encoder = sequence_encoder
        self.graph_encoder = graph_encoder
        self.graph_last_n = graph_last_n
        self.graph_last_frac = graph_last_frac
        self.graph_batch_size = graph_batch_size
        self.joint_graph_step = joint_graph_step
        self.warmup_graph_step = warmup_graph_step
        self.regularization = regularization
        self.warmup_epochs = warmup_epochs
        self.graph_weight = graph_weight
        self.alignment = alignment
        self.alignment_weight = alignment_weight
        self.alignment_batch_size = alignment_batch_size
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.loss = loss
        self.filter_seen = filter_seen
        self.random_state = random_state
        self.trainer = trainer
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    _parts = {"sequence_encoder": SEQUENCE_ENCODERS, "graph_encoder": GRAPH_ENCODERS,
              "alignment": ALIGNMENTS, "loss": LOSSES, **SASRecRecommender._parts}

    _parameter_constraints: dict = {
        **NeuralRecommender._parameter_constraints,
        **GRAPH_SIZE_CONSTRAINTS,
        "n_factors": [Interval(Integral, 1, None, closed="left")],
        "graph_batch_size": [Interval(Integral, 1, None, closed="left")],
        "joint_graph_step": [StrOptions({"auto", "full", "light"})],
        "warmup_graph_step": [StrOptions({"auto", "full", "light"})],
        "regularization": [Interval(Real, 0, None, closed="left")],
        "warmup_epochs": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
        "graph_weight": [Interval(Real, 0, None, closed="left")],
        "alignment_weight": [Interval(Real, 0, None, closed="left")],
        "alignment_batch_size": [None, Interval(Integral, 1, None, closed="left")],
    }

    def _check_params(self):
        n_heads = SEQUENCE_ENCODERS.resolve(self.sequence_encoder).n_heads
        if self.n_factors % n_heads:
            raise ValueError(f"the sequence encoder's n_heads ({n_heads}) must divide "
                             f"n_factors ({self.n_factors}).")
        if self.alignment_batch_size is not None and self.alignment_batch_size < self.batch_size:
            raise ValueError(f"alignment_batch_size ({self.alignment_batch_size}) adds users to "
                             f"each batch's alignment and must be at least batch_size "
                             f"({self.batch_size}), or None.")
        if getattr(GRAPH_ENCODERS.resolve(self.graph_encoder), "n_factors", None) is not None:
            raise ValueError(f"graph_encoder={self.graph_encoder!r} sets its own n_factors; in "
                             "CREATE it shares the item table, whose width is n_factors: "
                             "leave the encoder's n_factors=None.")
        if self._warmup_epochs and self.graph_weight == 0:
            raise ValueError("warmup_epochs > 0 trains the graph loss alone, which needs "
                             "graph_weight > 0.")
        if self._aligned and self.batch_size < 2:
            raise ValueError(f"the alignment standardises over a batch of users and needs "
                             f"batch_size >= 2, got batch_size={self.batch_size}; or set "
                             "alignment='none'.")

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

    def _sequence_part(self):
        return SEQUENCE_ENCODERS.make(self.sequence_encoder)

    def _build(self, data, rng):
        sequence, sequence_batches = self._sequence_model(data, rng)
        user_items, edges = data.graph(self.graph_last_n, self.graph_last_frac)
        # a side stream for the graph's initialisation leaves the sequence branch's random
        # draws as in plain SASRec, so switching the graph off reproduces SASRec exactly
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch.initial_seed() + 1)
            encoder = GRAPH_ENCODERS.make(self.graph_encoder)
            encoder.build(user_items, sequence.item_table)
        # the shared table is row-sparse only when every reader reads rows: SCE and a
        # row-sparse graph encoder (its "auto" decided by the graph's size); otherwise a
        # dense gradient of the whole table each step (and a dense Adam update of every row)
        # costs the catalogue, whatever the batch
        sequence.item_table.sparse = bool(LOSSES.resolve(self.loss).row_sparse) and \
            getattr(encoder, "_row_sparse", False)
        graph = GraphModel(encoder, self.regularization, seeded_generator(1))
        alignment = ALIGNMENTS.make(self.alignment) if self._aligned else None
        # decided for the device the steps will run on (fit and partial_fit set it first): the
        # encoder is built on the CPU, and LightGCN's "auto" propagates in full on a GPU
        historical = encoder.own_rows_step(getattr(self, "device_", None))
        light, light_warmup = (option == "light" or (option == "auto" and historical)
                               for option in (self.joint_graph_step, self.warmup_graph_step))
        model = CREATEModel(sequence, graph, alignment, neighbour_gradients=not light,
                            warmup_neighbour_gradients=not light_warmup)
        edges = EdgeBatches.for_encoder(encoder, edges, self.graph_batch_size, rng)
        warmup = Stage("warmup", self._warmup_epochs, KeyedBatches(edges, "edges"),
                       {"global": self.graph_weight}, validate=False)
        extra = 0 if self.alignment_batch_size is None or not self._aligned \
            else self.alignment_batch_size - self.batch_size
        joint = Stage("joint", self.epochs,
                      JointBatches(sequence_batches, edges if self.graph_weight > 0 else None,
                                   alignment_users=extra,
                                   edge_batch_size=self._joint_edges(light)),
                      {"local": 1.0, "global": self.graph_weight,
                       "align": self.alignment_weight})
        return model, [warmup, joint]

    def _joint_edges(self, light):
        """Edges a joint batch holds: a share of ``graph_batch_size`` when light, else all."""
        return max(1, round(LIGHT_EDGE_SHARE * self.graph_batch_size)) if light else None

    def _update_stages(self, module, stages):
        # an update's stages come from its users' graph, its network from the whole one,
        # whose size decides "auto": the joint edges follow the network's gradients
        stages[1].batches.edge_batch_size = self._joint_edges(not module.neighbour_gradients)
        return stages

    def _fit(self, data):
        super()._fit(data)
        self.warmup_epochs_ = self.epoch_stages_.count("warmup")

    _free_params = SASRecRecommender._free_params | {"warmup_epochs", "graph_batch_size",
                                                     "joint_graph_step",
                                                     "warmup_graph_step"} | {
        f"graph_encoder__{name}" for name in GRAPH_RUN_OPTIONS}

    def partial_fit(self, X, y=None, epochs=None, replay=0.0, warmup_epochs=None,
                    fold_in=True, new_item_step=5.0, average_epochs=None):
        """Update the fitted model with new interactions.

        As :meth:`~skcreate.estimators.base.BaseRecommender.partial_fit`: the graph is rebuilt
        from all interactions (the ``graph_last_*`` rule applied to the updated histories),
        the item table and the graph's user table grow by the new items and users, and
        training continues from the fitted weights and optimiser state on the histories and
        edges of the users with new events.

        Parameters
        ----------
        X : pandas.DataFrame
            The new interactions.
        y : None
            Ignored.
        epochs : int, optional
            Joint epochs of the update; by default a third of ``epochs`` (at least 1).
        replay : float, default=0.0
            Share of the users without new events whose histories and edges join the update
            (see :meth:`~skcreate.estimators.base.BaseRecommender.partial_fit`).
        warmup_epochs : int, optional
            Graph-only epochs before them, which give the new rows graph embeddings before
            the alignment reads them; by default a third of the fit's (``warmup_epochs_``:
            20 after the default 60). On Amazon Beauty's validation split (3 seeds) they
            raised the default update's NDCG@10 by 3-7 % (to the refit's or above), new items
            and known ones alike, at a few seconds' cost
            (``benchmarks/results/partial-fit-beauty-validation-young.md``).
        fold_in : bool, default=True
            Start each new item's row from the fitted transformer's states before its events
            (see :meth:`SASRecRecommender.partial_fit
            <skcreate.estimators.sequential.SASRecRecommender.partial_fit>`); the warm-up
            then trains from there.
        new_item_step : float, default=5.0
            How many times as far as the optimiser every step of the update (warm-up and
            joint) moves the new items' rows (see :meth:`SASRecRecommender.partial_fit
            <skcreate.estimators.sequential.SASRecRecommender.partial_fit>`). Chosen on
            Amazon Beauty's validation split (3 seeds, NDCG@10 of the default update: 2.15 %
            at 1, 2.20 at 2, 2.22 at 3, 2.27 at 5, 2.20 at 10; the refit 2.03): the users
            whose target is a new item gain (1.76 % to 3.19 %), the others lose a little
            (2.21 to 2.14), where a 3x learning rate for every row lost more on them
            (``benchmarks/results/partial-fit-beauty-validation-young.md``).
        average_epochs : int, optional
            The updated weights are the mean of the weights at the ends of the update's last
            ``average_epochs`` joint epochs (:class:`skcreate.training.averaging.TailAverage`),
            at most ``epochs``; by default half of them, rounded up (4 of the default 7); 1
            keeps the last epoch's. On Amazon Beauty's validation split (3 bases, 3 update
            seeds each) the default update scored NDCG@10 2.23 ± 0.09 % unaveraged, 2.24 ±
            0.08 % averaging 2 epochs and 2.26 ± 0.10 % averaging 4, higher on 7 draws of 9
            (``benchmarks/results/partial-fit-beauty-validation-young.md``).

        Returns
        -------
        self
        """
        if warmup_epochs is None:
            # the fit's stages in proportion, as the joint epochs' default
            warmup_epochs = round(getattr(self, "warmup_epochs_", 0) / 3)
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, Integral) \
                or warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}.")
        return self._update(X, epochs, replay, warmup_epochs=int(warmup_epochs),
                            fold_in=check_bool(fold_in, "fold_in"),
                            new_item_step=check_positive(new_item_step, "new_item_step"),
                            average_epochs=check_average_epochs(average_epochs))

    @staticmethod
    def _sequence_step(module):
        return module.sequence
