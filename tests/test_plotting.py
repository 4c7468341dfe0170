"""plot_training_curves counts epochs on its x axis like ``epochs`` and ``best_epoch_``."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from skcreate import CREATERecommender, SASRecRecommender
from skcreate.nn import SASRecEncoder
from skcreate.apps.plotting import plot_training_curves
from skcreate.training import Trainer

matplotlib.use("Agg")

FAST = dict(n_factors=8, batch_size=64, random_state=0)
SHORT = SASRecEncoder(max_len=10)


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_joint_epochs_count_from_one_after_the_warm_up(synthetic):
    model = CREATERecommender(warmup_epochs=3, epochs=4,
                              trainer=Trainer(early_stopping=True, patience=10),
                              sequence_encoder=SHORT, **FAST).fit(synthetic)
    loss_ax, val_ax = plot_training_curves(model).axes
    total = _lines(loss_ax)["total (weighted)"]
    np.testing.assert_array_equal(total.get_xdata(), [-2, -1, 0, 1, 2, 3, 4])
    assert _lines(loss_ax)["end of warm-up"].get_xdata()[0] == 0.5
    # validation after joint epochs only, and the kept epoch marked where best_epoch_ says
    (scores,) = [line for label, line in _lines(val_ax).items() if label.startswith("_")]
    y = np.asarray(scores.get_ydata(), dtype=float)
    assert np.isnan(y[:3]).all() and np.isfinite(y[3:]).all()
    best = _lines(val_ax)[f"best_epoch_ = {model.best_epoch_}"]
    assert best.get_xdata()[0] == model.best_epoch_
    assert np.nanargmax(y) - 2 == model.best_epoch_
    assert loss_ax.get_xlabel() == "joint epoch (warm-up up to 0)"


def test_without_warm_up_epochs_are_plain(synthetic):
    model = SASRecRecommender(epochs=2, max_len=10, **FAST).fit(synthetic)
    (loss_ax,) = plot_training_curves(model).axes
    np.testing.assert_array_equal(_lines(loss_ax)["total (weighted)"].get_xdata(), [1, 2])
    assert loss_ax.get_xlabel() == "epoch" and "end of warm-up" not in _lines(loss_ax)


def test_a_model_without_validation_gets_the_loss_panel_only(synthetic):
    model = CREATERecommender(warmup_epochs=2, epochs=2, sequence_encoder=SHORT,
                              **FAST).fit(synthetic)
    fig = plot_training_curves(model)
    (loss_ax,) = fig.axes
    assert len(_lines(loss_ax)["total (weighted)"].get_xdata()) == 4
    # a second axis given by the caller says why it stays empty
    _, axes = plt.subplots(1, 2)
    plot_training_curves(model, axes=axes)
    assert "trainer__early_stopping=True" in axes[1].get_title() and not axes[1].get_lines()
