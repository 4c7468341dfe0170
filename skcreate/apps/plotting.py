"""Training-curve plots in the style of the CREATE paper's Figure 2 (matplotlib, optional)."""

import numpy as np

__all__ = ["plot_training_curves"]


def plot_training_curves(model, axes=None):
    """Plot per-term losses and validation NDCG@10 of a fitted neural recommender.

    A model fitted without validation (without ``trainer__early_stopping``) has no validation
    curve: the figure then holds the loss panel only.

    The x axis counts epochs like the ``epochs`` parameter and ``best_epoch_``: joint epochs are
    1, 2, ...; the warm-up epochs of a :class:`~skcreate.estimators.create.CREATERecommender`
    come before them, numbered up to 0, with a dotted line at the boundary. With early stopping,
    ``best_epoch_`` (the epoch whose weights were kept) is marked on the validation panel.

    Parameters
    ----------
    model : fitted skcreate neural recommender
        Reads ``loss_curve_``, ``loss_terms_``, ``validation_scores_`` and ``warmup_epochs_``.
    axes : sequence of one or two matplotlib Axes, optional
        Where to draw losses and validation NDCG; created when None (two panels with a
        validation curve, else one). A second axis given for a model without validation
        says so in its title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.create import CREATERecommender
    >>> from skcreate.apps.plotting import plot_training_curves
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
    # validation runs after joint epochs only; warm-up epochs hold NaN. Its run may be longer
    # than the loss curve's (retrain_on_all retrains for best_epoch_ epochs)
    scores = np.asarray(model.validation_scores_, dtype=float)
    validated = bool(np.isfinite(scores).any())
    if axes is None:
        fig, axes = plt.subplots(1, 1 + validated, figsize=(10 if validated else 5.5, 3.5),
                                 squeeze=False)
        axes = axes[0]
    else:
        fig = axes[0].figure
    warmup = getattr(model, "warmup_epochs_", 0)
    epochs = np.arange(1, len(model.loss_curve_) + 1) - warmup
    loss_ax, val_ax = axes[0], (axes[1] if len(axes) > 1 else None)
    if warmup:
        for ax in (loss_ax, val_ax) if validated else (loss_ax,):
            ax.axvline(0.5, color="grey", linestyle=":", label="end of warm-up")
    loss_ax.plot(epochs, model.loss_curve_, label="total (weighted)", color="black")
    for name, curve in sorted(getattr(model, "loss_terms_", {}).items()):
        # a term is recorded as 0 in epochs where it is off (the warm-up): leave a gap
        curve = np.where(np.asarray(curve, dtype=float) > 0, curve, np.nan)
        loss_ax.plot(epochs, curve, label=f"{name} (unweighted)", linestyle="--")
    xlabel = "joint epoch (warm-up up to 0)" if warmup else "epoch"
    loss_ax.set(xlabel=xlabel, ylabel="training loss", yscale="log")
    loss_ax.legend()
    if val_ax is None:
        fig.tight_layout()
        return fig
    if not validated:
        val_ax.set_title("no validation curve: fit with trainer__early_stopping=True")
    else:
        val_ax.plot(np.arange(1, len(scores) + 1) - warmup, 100 * scores, marker="o",
                    markersize=3)
        if getattr(model, "best_epoch_", 0):
            val_ax.axvline(model.best_epoch_, color="tab:red", linestyle="--",
                           label=f"best_epoch_ = {model.best_epoch_}")
    val_ax.set(xlabel=xlabel, ylabel="validation NDCG@10 (%)")
    if val_ax.get_legend_handles_labels()[0]:
        val_ax.legend()
    fig.tight_layout()
    return fig
