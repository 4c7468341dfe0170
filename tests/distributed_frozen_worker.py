"""A data-parallel fit in which rank 1 freezes after its first epoch (tests/test_distributed.py).

Usage: ``torchrun --nproc-per-node 2 tests/distributed_frozen_worker.py OUT_DIR`` with a short
``SKCREATE_DISTRIBUTED_TIMEOUT``. Rank 0 writes the error its fit ended with.
"""

import os
import sys
import time
from pathlib import Path

from skcreate import SASRecRecommender
from skcreate.data.datasets import make_interactions
from skcreate.training import Trainer


def freeze(iteration, elapsed, loss):
    time.sleep(3600)


def main(out):
    rank = int(os.environ["RANK"])
    model = SASRecRecommender(n_factors=8, max_len=5, epochs=3, random_state=0,
                              trainer=Trainer(callbacks=[freeze] if rank == 1 else None))
    started = time.perf_counter()
    try:
        model.fit(make_interactions(n_users=60, n_items=20, random_state=0))
    except Exception as exc:
        Path(out, f"error-rank{rank}.txt").write_text(
            f"{type(exc).__name__}: {exc}\n{time.perf_counter() - started:.1f}")
        raise


if __name__ == "__main__":
    main(sys.argv[1])
