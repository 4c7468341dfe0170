"""The training loop shared by every neural estimator."""

import copy
import time
import warnings
from dataclasses import dataclass, field

import torch
# plain tqdm: tqdm.auto warns in notebooks without ipywidgets even when the bar is off
from tqdm import tqdm

__all__ = ["TrainingResult", "train"]


@dataclass
class TrainingResult:
    """What a training run learned about itself.

    Attributes
    ----------
    loss_curve : list of float
        Mean total loss per epoch.
    loss_terms : dict of str to list of float
        Mean of each named loss term per epoch (an epoch where a term is off records 0).
    validation_scores : list of float
        Validation NDCG@10 per epoch (empty without validation).
    epoch_seconds : list of float
        Wall-clock seconds of each epoch's training (validation excluded).
    best_epoch : int
        Number of epochs of the kept weights.
    interrupted : bool
        Whether Ctrl-C stopped training.
    """

    loss_curve: list = field(default_factory=list)
    loss_terms: dict = field(default_factory=dict)
    validation_scores: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    best_epoch: int = 0
    interrupted: bool = False


def train(module, objective, epochs, learning_rate, clip_norm=1.0, validate=None,
          patience=None, verbose=False, description="training", weight_decay=0.0,
          validate_from=0):
    """Train ``module`` with Adam on ``objective``.

    Parameters
    ----------
    module : torch.nn.Module
        Holds every trainable parameter.
    objective : object
        ``objective.batches(epoch)`` yields batches and ``objective.loss(batch, epoch)`` returns
        ``(loss, terms)``, ``terms`` a dict of named float tensors. Parameters that a given
        epoch's loss does not reach get no gradient, and Adam leaves them unchanged.
    epochs : int
    learning_rate : float
    clip_norm : float or None
        Max global gradient norm.
    validate : callable, optional
        Returns a validation score (higher is better) for the current weights; called after
        every epoch, with the module in eval mode.
    patience : int, optional
        With ``validate``, stop after this many epochs without improvement; the best weights
        are restored in any case.
    verbose : bool
        Show a progress bar with loss and validation NDCG@10.
    description : str
        Progress bar label.
    weight_decay : float
        Adam's L2 penalty.
    validate_from : int
        First epoch (0-based) that is validated and may be kept; earlier epochs (a warm-up)
        record NaN and do not count towards patience.

    Returns
    -------
    TrainingResult
    """
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate, weight_decay=weight_decay)
    result = TrainingResult()
    best_score, best_state = -float("inf"), None
    bar = tqdm(range(epochs), desc=description, disable=not verbose, leave=False)
    try:
        for epoch in bar:
            module.train()
            started = time.perf_counter()
            total, terms, n_batches = 0.0, {}, 0
            for batch in objective.batches(epoch):
                loss, batch_terms = objective.loss(batch, epoch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_norm:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), clip_norm)
                optimizer.step()
                total += loss.item()
                for name, value in batch_terms.items():
                    terms[name] = terms.get(name, 0.0) + float(value)
                n_batches += 1
            result.epoch_seconds.append(time.perf_counter() - started)
            n_batches = max(n_batches, 1)
            result.loss_curve.append(total / n_batches)
            for name in terms.keys() | result.loss_terms.keys():
                curve = result.loss_terms.setdefault(name, [0.0] * epoch)
                curve.append(terms.get(name, 0.0) / n_batches)
            postfix = {"loss": f"{result.loss_curve[-1]:.4f}"}
            if validate is None:
                result.best_epoch = epoch + 1
            elif epoch < validate_from:
                result.validation_scores.append(float("nan"))
            else:
                module.eval()
                score = float(validate())
                result.validation_scores.append(score)
                postfix["val_ndcg@10"] = f"{score:.4f}"
                if score > best_score:
                    best_score, result.best_epoch = score, epoch + 1
                    best_state = copy.deepcopy(module.state_dict())
                elif patience is not None and epoch + 1 - result.best_epoch >= patience:
                    bar.set_postfix(postfix)
                    break
            bar.set_postfix(postfix)
    except KeyboardInterrupt:
        result.interrupted = True
        warnings.warn(f"{description} interrupted after {len(result.loss_curve)} epoch(s); "
                      "keeping the best weights so far.", UserWarning, stacklevel=2)
    finally:
        bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return result
