"""SASRecRecommender: next-item prediction with a causal transformer."""

from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ..data.interactions import check_bool, check_positive
from ..nn.local_loss import FullCrossEntropy, LocalLoss, ScalableCrossEntropy
from ..nn.registry import Shortcuts
from ..nn.sasrec import SASRecEncoder
from ..nn.scoring import SequenceScorer
from ..nn.sequence_model import SequenceModel
from ..training import Stage
from ..training.batches import MaskedSequenceBatches, SequenceBatches, trim_padding
from ..training.growth import fold_in_items
from .neural import NeuralRecommender, check_average_epochs, copy_to_cpu, seeded_generator

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
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, dropout, shuffling and sampling.
    trainer : skcreate.training.Trainer, default=None
        How the fit runs (None: ``Trainer()``): the device, early stopping on a validation
        split inside the fit data (``trainer__early_stopping=True``, with ``patience``,
        ``validation_quantile`` and ``retrain_on_all``), checkpoints to resume from, Ctrl-C
        handling, data parallelism under torchrun, bf16 precision, callbacks and a progress
        bar (``trainer__verbose=True``). Its options are reached as ``trainer__<name>``.
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
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.sequential import SASRecRecommender
    >>> df = make_interactions(n_users=100, n_items=40, random_state=0)
    >>> model = SASRecRecommender(n_factors=16, epochs=2, random_state=0).fit(df)
    >>> model.recommend(df[df.user_id == 3], k=5)["rank"].tolist()
    [1, 2, 3, 4, 5]
    """

    def __init__(self, n_factors=64, n_blocks=2, n_heads=1, max_len=50, dropout=0.3,
                 norm_first=True, learning_rate=2e-3, batch_size=128, epochs=15,
                 weight_decay=0.0, loss="ce", filter_seen=True, random_state=None, trainer=None,
                 user_col="user_id", item_col="item_id", time_col="timestamp"):
        self.n_factors = n_factors
        self.n_blocks = n_blocks
        self.n_heads = n_heads
        self.max_len = max_len
        self.dropout = dropout
        self.norm_first = norm_first
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

    # a batch's cost grows with its longest history (padding is trimmed to it)
    _batch_by_length = True

    # the transformer's options are its encoder's, declared there
    _parameter_constraints: dict = {
        **NeuralRecommender._parameter_constraints,
        **SASRecEncoder._parameter_constraints,
        "n_factors": [Interval(Integral, 1, None, closed="left")],
    }

    def _check_params(self):
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

    _parts = {"loss": LOSSES, **NeuralRecommender._parts}

    def _local_loss(self):
        return LOSSES.make(self.loss).build(seeded_generator())

    @property
    def _sparse_table(self):
        # SCE reads a few thousand rows of the table per step: row-sparse gradients and lazy
        # updates keep the step's cost off the catalogue size
        return LOSSES.resolve(self.loss).row_sparse

    def _build(self, data, rng):
        model, batches = self._sequence_model(data, rng)
        model.item_table.sparse = self._sparse_table
        return model, [Stage("train", self.epochs, batches)]

    @staticmethod
    def _sequence_step(module):
        """The sequence step of a network of this estimator (the part that serves)."""
        return module

    @property
    def _network(self):
        """The fitted sequence step that serves recommendations."""
        return self._sequence_step(self.module_)

    def partial_fit(self, X, y=None, epochs=None, replay=0.0, fold_in=True, new_item_step=5.0,
                    average_epochs=1):
        """Update the fitted model with new interactions.

        As :meth:`~skcreate.estimators.base.BaseRecommender.partial_fit`, with the rows of
        items first seen in ``X`` folded in before training (``fold_in``).

        Parameters
        ----------
        X : pandas.DataFrame
            The new interactions.
        y : None
            Ignored.
        epochs : int, optional
            Epochs of the update; by default a third of ``epochs`` (at least 1).
        replay : float, default=0.0
            Share of the users without new events whose histories join the update.
        fold_in : bool, default=True
            Start each new item's row from the fitted transformer: the mean of its states
            just before the item's events, at the median norm of the youngest fitted rows
            (:func:`skcreate.training.growth.fold_in_items`), so that the update refines a
            row that already scores where histories lead to the item. False starts it from
            a random draw, as at fit. A bidirectional encoder (BERT4Rec) keeps the random
            draw: its states are not next-item predictions.
        new_item_step : float, default=5.0
            Every update step moves the new items' rows this many times as far as the
            optimiser does (the fitted rows as far), so that rows trained for the update's
            few epochs catch up with rows trained for the fit's
            (:func:`skcreate.training.growth.stretch_new_item_steps`). Chosen on Amazon
            Beauty's validation split with CREATE (from 1, 2, 3, 5, 10) and checked there
            with SASRec (3 seeds, 4 epochs with ``replay=1``: NDCG@10 1.88 % at 1, 2.01 % at
            5, the refit 1.93 %; ``benchmarks/results/partial-fit-beauty-validation-step.md``).
        average_epochs : int or None, default=1
            The updated weights are the mean of the weights at the ends of the update's last
            ``average_epochs`` epochs (:class:`skcreate.training.averaging.TailAverage`), at
            most ``epochs``; None averages the last half, rounded up, and 1 keeps the last
            epoch's. Not averaged by default: on Amazon Beauty's validation split (3 seeds, 4
            epochs with ``replay=1``) 2 epochs scored NDCG@10 1.97 % against 2.01 % (CREATE
            gained from it: see :meth:`CREATERecommender.partial_fit
            <skcreate.estimators.create.CREATERecommender.partial_fit>`).

        Returns
        -------
        self
        """
        return self._update(X, epochs, replay, fold_in=check_bool(fold_in, "fold_in"),
                            new_item_step=check_positive(new_item_step, "new_item_step"),
                            average_epochs=check_average_epochs(average_epochs))

    def _fold_in_items(self, module, data, rows, first_new):
        step = self._sequence_step(module)
        if step.mask_token is None:
            fold_in_items(step.encoder, data, rows, first_new)

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

    def _serving_scorer(self):
        network = copy_to_cpu(self._network)
        return SequenceScorer(network.encoder, network.mask_token), None
