"""Training-curve plots in the style of the CREATE paper's Figure 2 (matplotlib, optional)."""

import numpy as np

__all__ = ["plot_training_curves"]


def plot_training_curves(model, axes=None):
    """Plot per-term losses and validation NDCG@10 of a fitted neural recommender.

    The warm-up boundary of a :class:`~skcreate.create.CREATERecommender` is drawn as a
    vertical line.

    Parameters
    ----------
    model : fitted skcreate neural recommender
        Reads ``loss_curve_``, ``loss_terms_``, ``validation_scores_`` and ``warmup_epochs_``.
    axes : sequence of two matplotlib Axes, optional
        Where to draw losses and validation NDCG; created when None.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from skcreate.datasets import make_interactions
    >>> from skcreate.create import CREATERecommender
    >>> from skcreate.plotting import plot_training_curves
    >>> df = make_interactions(n_users=100, n_items=40, random_state=0)
    >>> model = CREATERecommender(n_factors=16, warmup_epochs=1, epochs=2,
    ...                           random_state=0).fit(df)
    >>> fig = plot_training_curves(model)  # doctest: +SKIP
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plot_training_curves needs matplotlib: pip install matplotlib") \
            from exc
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    else:
        fig = axes[0].figure
    epochs = np.arange(1, len(model.loss_curve_) + 1)
    loss_ax, val_ax = axes
    warmup = getattr(model, "warmup_epochs_", 0)
    if warmup:
        for ax in axes:
            ax.axvline(warmup + 0.5, color="grey", linestyle=":", label="end of warm-up")
    loss_ax.plot(epochs, model.loss_curve_, label="total (weighted)", color="black")
    for name, curve in sorted(getattr(model, "loss_terms_", {}).items()):
        # a term is recorded as 0 in epochs where it is off (the warm-up): leave a gap
        curve = np.where(np.asarray(curve, dtype=float) > 0, curve, np.nan)
        loss_ax.plot(epochs, curve, label=f"{name} (unweighted)", linestyle="--")
    loss_ax.set(xlabel="epoch", ylabel="training loss", yscale="log")
    loss_ax.legend()
    scores = np.asarray(model.validation_scores_, dtype=float)
    if len(scores):
        val_ax.plot(epochs[:len(scores)], 100 * scores, marker="o", markersize=3)
    val_ax.set(xlabel="epoch", ylabel="validation NDCG@10 (%)")
    if warmup:
        val_ax.legend()
    fig.tight_layout()
    return fig
