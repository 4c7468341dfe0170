"""The same ``random_state`` gives identical recommendations in two fresh processes."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

# one process: fit every estimator with random_state=0 and write all recommendations
SCRIPT = """
import sys
import warnings

import pandas as pd

from skcreate import (ALSRecommender, BPRRecommender, CREATERecommender, LightGCNRecommender,
                      PopRandomRecommender, PopularRecommender, PureSVDRecommender,
                      RandomRecommender, SASRecRecommender, UltraGCNRecommender)
from skcreate.data.datasets import make_interactions
from skcreate.nn import SASRecEncoder

NEURAL = dict(n_factors=8, epochs=2, batch_size=32, random_state=0)
estimators = [
    PopularRecommender(), RandomRecommender(random_state=0),
    PopRandomRecommender(random_state=0), PureSVDRecommender(n_factors=4, random_state=0),
    ALSRecommender(n_factors=8, iterations=3, num_threads=int(sys.argv[2]), random_state=0),
    BPRRecommender(n_factors=8, iterations=5, random_state=0),
    LightGCNRecommender(n_layers=2, **NEURAL), UltraGCNRecommender(n_negatives=4, **NEURAL),
    SASRecRecommender(max_len=8, **NEURAL),
    CREATERecommender(sequence_encoder=SASRecEncoder(max_len=8), warmup_epochs=1, **NEURAL),
]
df = make_interactions(n_users=60, n_items=40, random_state=0)
history = df[df.user_id % 3 == 0]
frames = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    for est in estimators:
        model = est.fit(df)
        frames.append(model.recommend(history, k=5).assign(model=type(est).__name__))
pd.concat(frames).to_csv(sys.argv[1], index=False, float_format="%.17g")
"""


def _run(path, seed, als_threads):
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(path), str(als_threads)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_fresh_processes_recommend_identically(tmp_path):
    paths = [tmp_path / "first.csv", tmp_path / "second.csv"]
    # other hash seeds (set and dict order) and another ALS thread count: ALS solves each
    # user's and item's least squares independently, so threads do not change its result
    runs = [_run(paths[0], 1, 1), _run(paths[1], 2, 2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    first, second = (pd.read_csv(p) for p in paths)
    assert set(first.model) == {"PopularRecommender", "RandomRecommender", "PopRandomRecommender",
                                "PureSVDRecommender", "ALSRecommender", "BPRRecommender",
                                "LightGCNRecommender", "UltraGCNRecommender",
                                "SASRecRecommender", "CREATERecommender"}
    # 20 users in the history, one of whom has seen all 40 items: 19 lists of 5
    assert first.groupby("model").size().eq(19 * 5).all()
    pd.testing.assert_frame_equal(first, second)
    assert Path(paths[0]).read_text() == Path(paths[1]).read_text()
