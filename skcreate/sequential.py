"""SASRecRecommender: next-item prediction with a causal transformer."""

import functools

import numpy as np
import torch

from .batches import MaskedSequenceBatches, SequenceBatches, trim_padding
from .neural import NeuralRecommender, check_bool, check_param, seeded_generator
from .nn.local_loss import FullCrossEntropy, LocalLoss, ScalableCrossEntropy
from .nn.optim import LazyAdam
from .nn.registry import Shortcuts
from .nn.sasrec import SASRecEncoder
from .nn.sequence_model import SequenceModel
from .training import Stage

__all__ = ["SASRecRecommender", "LOSSES"]

#: what ``loss`` accepts by name
LOSSES = Shortcuts(LocalLoss, {"ce": FullCrossEntropy, "sce": ScalableCrossEntropy})


class SASRecRecommender(NeuralRecommender):
    """SASRec (Kang & McAuley, 2018) trained with full or scalable cross-entropy.

    Every position of each user's last ``max_len + 1`` items is trained to predict the next
    item with a softmax over the whole catalogue (``loss="ce"``; logits are computed for real
    positions only) or with scalable cross-entropy (``loss="sce"``) for large catalogues.
    Any history is served without refitting: the user state is the transformer output at the
    most recent item, scored against the item table.

    Parameters
    ----------
    n_factors : int, default=64
        Embedding width.
    n_blocks : int, default=2
        Transformer blocks.
    n_heads : int, default=1
        Attention heads (must divide ``n_factors``).
    max_len : int, default=50
        Items of history the model reads.
    dropout : float, default=0.3
        Dropout rate.
    norm_first : bool, default=True
        Pre-LN blocks (False: post-LN, as in the original SASRec).
    learning_rate : float, default=2e-3
        Adam step size.
    batch_size : int, default=128
        Users per step.
    epochs : int, default=15
        Training epochs (the maximum with early stopping). The defaults were chosen on the
        validation split of Amazon Beauty (see ``benchmarks/README.md``).
    early_stopping : bool, default=False
        Hold out the last part of the fit data in time (``validation_quantile``), stop when
        validation NDCG@10 has not improved for ``patience`` epochs and keep the best weights.
    retrain_on_all : bool, default=False
        With ``early_stopping``, then train again from scratch (same seed) on all the fit data
        for the ``best_epoch_`` epochs the validation run chose, as the benchmark protocol
        does: the final model also learns from the held-out last part, which holds the most
        recent interactions. ``validation_scores_`` and ``best_epoch_`` come from the
        validation run, the other curves from the retrain. A ``checkpoint_path`` covers the
        validation run.
    patience : int, default=5
        Epochs without improvement before stopping.
    validation_quantile : float, default=0.9
        Time quantile of the internal validation split.
    weight_decay : float, default=0.0
        Adam L2 penalty.
    loss : {"ce", "sce"} or skcreate.nn.LocalLoss, default="ce"
        The local loss: :class:`~skcreate.nn.FullCrossEntropy` (``"ce"``, the softmax over
        the whole catalogue), :class:`~skcreate.nn.ScalableCrossEntropy` (``"sce"``, over each
        position's hardest negatives, for large catalogues; its options, such as
        ``loss__bucket_size_y``, are reached as ``loss__<name>``), or a user's own. With SCE
        the item table also gets row-sparse gradients and lazy Adam updates
        (:class:`skcreate.nn.optim.LazyAdam`): a step updates the rows it read, not the whole
        table.
    filter_seen : bool, default=True
        Exclude each user's history items from recommendations.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where to train and infer.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, dropout, shuffling and sampling.
    verbose : bool, default=False
        Show a progress bar with the loss (and validation NDCG@10).
    callbacks : list of skcreate.training.Callback or callable, default=None
        Training hooks (see :func:`skcreate.training.train`); a callable is called as
        ``callback(epoch, elapsed, loss)`` after every epoch.
    on_interrupt : {"raise", "stop"}, default="raise"
        What Ctrl-C during ``fit`` does. ``"stop"`` stops training and returns from ``fit``
        with a warning; the estimator keeps the best weights so far (the last epoch's without
        validation) and its curves, with ``interrupted_=True``. ``"raise"`` re-raises
        ``KeyboardInterrupt``, so that a surrounding ``GridSearchCV`` or script stops too, and
        leaves the estimator unfitted like any failed ``fit`` (a checkpoint, if any, is kept
        to resume from).
    checkpoint_path : str or os.PathLike, default=None
        A file to save the whole training state in every ``checkpoint_every`` epochs (written
        to a temporary name, then renamed, so a crash never leaves half a file). When ``fit``
        finds the file, it resumes after the epoch it holds and ends with the same weights as
        an uninterrupted fit; a file from a fit with other parameters or data is refused. A
        finished fit deletes the file; an interrupted, killed or diverged one leaves it.
    checkpoint_every : int, default=1
        Epochs between checkpoint writes.
    distributed : {"auto", False}, default="auto"
        ``"auto"`` trains data-parallel when launched by torchrun (``WORLD_SIZE > 1``) or in
        an initialised process group, one device per process; ``False`` trains in each
        process alone. See ``docs/distributed.md``.
    precision : {"fp32", "bf16"}, default="fp32"
        Arithmetic of the training forward pass: ``"bf16"`` runs it under bfloat16 autocast
        (weights, optimiser and backward stay float32); faster on GPUs with bf16 units.
    user_col, item_col, time_col : str
        Column names of the interaction frames.

    Attributes
    ----------
    module_ : skcreate.nn.SequenceModel
        The trained network; ``module_.encoder`` (:class:`~skcreate.nn.SASRecEncoder`) serves.
    item_ids_ : pandas.Index
        Catalogue.
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_scores_ : list of float
        Validation NDCG@10 per epoch (early stopping only).
    best_epoch_ : int
        Epochs of the kept weights.
    n_epochs_ : int
        Epochs run.
    epoch_seconds_ : list of float
        Training seconds of every epoch.
    epoch_stages_ : list of str
        Training stage of every epoch (see :class:`skcreate.training.Stage`).
    interrupted_ : bool
        Whether Ctrl-C stopped the fit (see ``on_interrupt``).
    resumed_epochs_ : int
        Epochs restored from ``checkpoint_path`` instead of run (0 for a fresh fit).

    Examples
    --------
    >>> from skcreate.datasets import make_interactions
    >>> from skcreate.sequential import SASRecRecommender
    >>> df = make_interactions(n_users=100, n_items=40, random_state=0)
    >>> model = SASRecRecommender(n_factors=16, epochs=2, random_state=0).fit(df)
    >>> model.recommend(df[df.user_id == 3], k=5)["rank"].tolist()
    [1, 2, 3, 4, 5]
    """

    def __init__(self, n_factors=64, n_blocks=2, n_heads=1, max_len=50, dropout=0.3,
                 norm_first=True, learning_rate=2e-3, batch_size=128, epochs=15,
                 early_stopping=False, retrain_on_all=False, patience=5, validation_quantile=0.9,
                 weight_decay=0.0, loss="ce", filter_seen=True, device="cpu", random_state=None,
                 verbose=False, callbacks=None, on_interrupt="raise", checkpoint_path=None,
                 checkpoint_every=1, distributed="auto", precision="fp32", user_col="user_id",
                 item_col="item_id", time_col="timestamp"):
        self.n_factors = n_factors
        self.n_blocks = n_blocks
        self.n_heads = n_heads
        self.max_len = max_len
        self.dropout = dropout
        self.norm_first = norm_first
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.retrain_on_all = retrain_on_all
        self.patience = patience
        self.validation_quantile = validation_quantile
        self.weight_decay = weight_decay
        self.loss = loss
        self.filter_seen = filter_seen
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.on_interrupt = on_interrupt
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.distributed = distributed
        self.precision = precision
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    # a batch's cost grows with its longest history (padding is trimmed to it)
    _batch_by_length = True

    def _check_model_params(self):
        for name in ("n_factors", "n_blocks", "n_heads", "max_len"):
            check_param(self, name, int, 1)
        check_param(self, "dropout", float, 0, 1, high_open=True)
        check_bool(self, "norm_first")
        if self.n_factors % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide n_factors "
                             f"({self.n_factors}).")

    def _sequence_part(self):
        """The unbuilt sequence encoder of a fit."""
        return SASRecEncoder(self.n_blocks, self.n_heads, self.max_len, self.dropout,
                             self.norm_first)

    def _sequence_model(self, data, rng):
        """The sequence step (next-item, or masked-item for a bidirectional encoder) and its
        batches."""
        encoder = self._sequence_part().build(data.n_items, self.n_factors)
        if encoder.causal:
            # last_items gives item-table rows: code + 1, 0 = padding
            batches = SequenceBatches(data.last_items(encoder.max_len + 1), self.batch_size, rng)
            return SequenceModel(encoder, self._local_loss()), batches
        mask = encoder.item_table.token(0)
        batches = MaskedSequenceBatches(data.last_items(encoder.max_len), self.batch_size, rng,
                                        mask, mask_prob=encoder.mask_prob)
        return SequenceModel(encoder, self._local_loss(), mask_token=mask), batches

    _parts = {"loss": LOSSES}

    def _local_loss(self):
        return LOSSES.make(self.loss).build(seeded_generator())

    @property
    def _sparse_table(self):
        # SCE reads a few thousand rows of the table per step: row-sparse gradients and lazy
        # updates keep the step's cost off the catalogue size
        return LOSSES.resolve(self.loss).row_sparse

    def _optimizer(self):
        if not self._sparse_table:
            return super()._optimizer()
        return functools.partial(LazyAdam, lr=self.learning_rate,
                                 weight_decay=self.weight_decay)

    def _build(self, data, rng):
        model, batches = self._sequence_model(data, rng)
        model.item_table.sparse = self._sparse_table
        return model, [Stage("train", self.epochs, batches)]

    @property
    def _network(self):
        """The fitted sequence step that serves recommendations."""
        return self.module_

    def _score(self, data, rows):
        network = self._network
        encoder = network.encoder
        if network.mask_token is None:
            items = torch.as_tensor(data.last_items(encoder.max_len, rows))
        else:
            # BERT4Rec reads the history followed by [MASK] and predicts at the mask
            items = torch.as_tensor(np.concatenate([
                data.last_items(encoder.max_len - 1, rows),
                np.full((len(rows), 1), network.mask_token)], axis=1))
        state = encoder.user_state(trim_padding(items).to(self.device_))
        return state @ encoder.catalogue_weight.T
