"""Per-step CPU time (1 torch thread, time.process_time) of the graph steps, old and new path.

The scratch measurement behind ``size-sweep-graph.md``, run when the shared benchmark lock was
not free: ``python size-sweep-graph-steps.py sweep`` (synthetic 0.1M-3M) or ``... beauty``
(Amazon Beauty from ``$SKCREATE_DATA``). Prints one JSON row per model and size.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch

from skcreate import CREATERecommender, LightGCNRecommender, SASRecRecommender
from skcreate.datasets import load_dataset, make_interactions
from skcreate.interactions import Interactions
from skcreate.nn import LightGCNEncoder
torch.set_num_threads(1)

def step_ms(est, data, stage, n=8, warm=2):
    est.device_ = torch.device("cpu")
    torch.manual_seed(0)
    model, stages = est._build(data, np.random.default_rng(0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = stages[stage].batches(0)
    total = 0.0
    for s in range(n + warm):
        b = next(batches)
        t = time.process_time()
        terms = model(b)
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if s >= warm:
            total += time.process_time() - t
    return 1000 * total / n

rows = []
def report(**row):
    rows.append(row)
    print(json.dumps(row), flush=True)

what = sys.argv[1]
if what == "sweep":
    for n, items in [(100_000, 10_000), (300_000, 30_000), (1_000_000, 100_000),
                     (3_000_000, 300_000)]:
        X = make_interactions(n_users=n // 20, n_items=items, mean_length=20, random_state=0)
        data, _ = Interactions.from_frame(X, "user_id", "item_id", "timestamp")
        steps = math.ceil(data.to_csr().nnz / 2048)
        for name, est in [
            ("CREATE-warmup", CREATERecommender(random_state=0)),
            ("CREATE-warmup-full", CREATERecommender(
                random_state=0, graph_encoder=LightGCNEncoder(n_layers=1, propagation="full"))),
            ("LightGCN", LightGCNRecommender(random_state=0)),
            ("LightGCN-full", LightGCNRecommender(random_state=0, propagation="full"))]:
            if n > 1_000_000 and name.endswith("full"):
                continue
            ms = step_ms(est, data, 0, n=4 if n >= 1_000_000 else 8)
            report(model=name, interactions=len(X), steps=steps, cpu_ms_per_step=round(ms, 2),
                   cpu_s_per_epoch=round(ms * steps / 1000, 2))
else:
    X = load_dataset("amazon-beauty", data_home=os.environ.get("SKCREATE_DATA"))
    data, _ = Interactions.from_frame(X, "user_id", "item_id", "timestamp")
    for name, est, stage in [
        ("SASRec", SASRecRecommender(random_state=0), 0),
        ("CREATE", CREATERecommender(random_state=0), 1),
        ("CREATE-full", CREATERecommender(
            random_state=0, graph_encoder=LightGCNEncoder(n_layers=1, propagation="full")), 1)]:
        ms = step_ms(est, data, stage, n=20, warm=3)
        report(model=name, interactions=len(X), cpu_ms_per_step=round(ms, 2))
