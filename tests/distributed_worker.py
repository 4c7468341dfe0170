"""Fits under torchrun for tests/test_distributed.py; writes what every rank ended with.

Usage: ``torchrun --nproc-per-node 2 tests/distributed_worker.py OUT_DIR``. Every rank fits each
model data-parallel and saves its weights; then the ranks share the single-process reference
fits (``trainer__distributed=False``, same parameters) and rank 0 saves each data-parallel model.
"""

import json
import os
import sys
import warnings
from pathlib import Path

import torch
from sklearn.base import clone

from skcreate import (CREATERecommender, LightGCNRecommender, SASRecRecommender,
                      UltraGCNRecommender)
from skcreate.data.datasets import make_interactions
from skcreate.nn import ProjectedBarlowTwins, SASRecEncoder
from skcreate.training import Trainer, distributed

SEQUENCE = dict(n_factors=16, n_blocks=1, max_len=10, dropout=0.0, batch_size=32,
                random_state=0)
CREATE = dict(n_factors=16, batch_size=32, random_state=0, graph_batch_size=200, warmup_epochs=1,
              epochs=2, sequence_encoder=SASRecEncoder(n_blocks=1, max_len=10, dropout=0.0))
MODELS = {
    # early stopping: validation sharded over the ranks, then reduced
    "sasrec": SASRecRecommender(epochs=2, trainer=Trainer(early_stopping=True), **SEQUENCE),
    "create": CREATERecommender(trainer=Trainer(early_stopping=True), **CREATE),
    "create-contrastive": CREATERecommender(alignment="contrastive", alignment_weight=0.2,
                                            **CREATE),
    # the projector reads the gathered rows: BT-SR's statistics are the global batch's too
    "create-bt-sr": CREATERecommender(alignment=ProjectedBarlowTwins(projector_dim=8),
                                      alignment_weight=0.25, **CREATE),
    "lightgcn": LightGCNRecommender(n_factors=16, n_layers=2, batch_size=300, epochs=2,
                                    random_state=0),
    "ultragcn": UltraGCNRecommender(n_factors=16, n_negatives=4, batch_size=300, epochs=2,
                                    random_state=0),
    # dropout masks are drawn per rank: the ranks agree, a single process draws others
    "sasrec-dropout": SASRecRecommender(**dict(SEQUENCE, dropout=0.3), epochs=1),
}


def curves(model):
    return {"loss_curve": model.loss_curve_, "validation_scores": model.validation_scores_,
            "world_size": model.world_size_, "best_epoch": model.best_epoch_}


def main(out):
    out = Path(out)
    warnings.simplefilter("ignore", UserWarning)
    df = make_interactions(n_users=155, n_items=60, random_state=0)
    rank = int(os.environ["RANK"])
    report = {}
    for name, model in MODELS.items():
        model.fit(df)
        torch.save(model.module_.state_dict(), out / f"{name}-rank{rank}.pt")
        report[name] = curves(model)
        if distributed.is_main_process():
            model.save(out / f"{name}.skc")
    for name in list(MODELS)[rank::distributed.world_size()]:
        single = clone(MODELS[name]).set_params(trainer__distributed=False).fit(df)
        torch.save(single.module_.state_dict(), out / f"{name}-single.pt")
        report[name + "-single"] = curves(single)
    (out / f"report-rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
