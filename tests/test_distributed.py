"""Data-parallel training: two gloo processes against one, sharding, sharded validation."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import skcreate
from skcreate import SASRecRecommender
from skcreate.data.datasets import make_interactions
from skcreate.training.batches import EdgeBatches, JointBatches, SequenceBatches, ShardedBatches
from skcreate.training import Trainer, distributed
from skcreate.training.trainer import _user_subset, _validation_score, _validation_sums

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("distributed_worker.py")
FROZEN_WORKER = Path(__file__).with_name("distributed_frozen_worker.py")
# the fits take ~20 s on two busy cores; the bound only keeps a broken group from hanging CI
TIMEOUT = 240


@pytest.fixture(scope="module")
def torchrun_fits(tmp_path_factory):
    """The worker's fits under torchrun, and what every rank reported."""
    out = tmp_path_factory.mktemp("distributed")
    code, log = torchrun(WORKER, out)
    assert code == 0, log[-3000:]
    reports = {}
    for rank in (0, 1):
        reports.update(json.loads((out / f"report-rank{rank}.json").read_text()))
    return out, reports


def torchrun(worker, out, timeout=TIMEOUT, **env):
    """Run ``worker`` in two CPU processes (gloo, localhost, a free port): (exit code, log)."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **env)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    # --standalone: a local rendezvous on a free port
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", str(worker), str(out)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # the launcher and its workers share a session: end them all
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s:\n{log[-3000:]}")
    return process.returncode, log


def test_a_frozen_rank_stops_the_fit_after_the_timeout(tmp_path):
    began = time.perf_counter()
    code, log = torchrun(FROZEN_WORKER, tmp_path, timeout=120,
                         SKCREATE_DISTRIBUTED_TIMEOUT="3")
    assert code != 0
    error, seconds = (tmp_path / "error-rank0.txt").read_text().rsplit("\n", 1)
    assert error.startswith("RankTimeoutError: rank 0 waited more than its timeout")
    assert "SKCREATE_DISTRIBUTED_TIMEOUT" in error
    # 3 s of waiting, not torch's 30 minutes (the rest is start-up on two busy cores)
    assert float(seconds) < 60
    assert time.perf_counter() - began < 120


def test_distributed_timeout_is_checked(monkeypatch):
    monkeypatch.delenv(distributed.TIMEOUT_VARIABLE, raising=False)
    assert distributed.timeout() == 300
    monkeypatch.setenv(distributed.TIMEOUT_VARIABLE, "2.5")
    assert distributed.timeout() == 2.5
    for bad in ("0", "-1", "soon", "nan", "inf"):
        monkeypatch.setenv(distributed.TIMEOUT_VARIABLE, bad)
        with pytest.raises(ValueError, match=f"SKCREATE_DISTRIBUTED_TIMEOUT='{bad}'"):
            distributed.timeout()


def weights(out, name, who):
    return torch.load(out / f"{name}-{who}.pt")


@pytest.mark.parametrize("name", ["sasrec", "create", "create-contrastive", "create-bt-sr",
                                  "lightgcn", "ultragcn", "sasrec-dropout"])
def test_ranks_end_with_identical_weights(torchrun_fits, name):
    out, reports = torchrun_fits
    first, second = weights(out, name, "rank0"), weights(out, name, "rank1")
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert reports[name]["world_size"] == 2
    assert reports[name + "-single"]["world_size"] == 1


@pytest.mark.parametrize("name", ["sasrec", "create", "create-contrastive", "create-bt-sr",
                                  "lightgcn", "ultragcn"])
def test_two_processes_train_like_one(torchrun_fits, name):
    """Same global batch size and seed (dropout 0): the single-process fit, to float error."""
    out, reports = torchrun_fits
    parallel, single = reports[name], reports[name + "-single"]
    np.testing.assert_allclose(parallel["loss_curve"], single["loss_curve"], rtol=1e-5)
    # validation over the shards of 2 ranks, reduced (the user count is odd, see below)
    np.testing.assert_allclose(parallel["validation_scores"], single["validation_scores"],
                               rtol=1e-9)
    assert parallel["best_epoch"] == single["best_epoch"]
    shared, alone = weights(out, name, "rank0"), weights(out, name, "single")
    for key, value in shared.items():
        # The attention's key bias and the BT-SR projector's output bias get no gradient but
        # rounding noise (softmax ignores a shift shared by all keys; Barlow Twins
        # standardises over the batch); Adam scales noise to steps of up to the learning
        # rate, so they may drift by learning_rate per step. Every other weight agrees to 1e-5.
        noise_only = key.endswith("qkv.bias") or key == "alignment.projector.2.bias"
        bound = 2e-3 * 40 if noise_only else 1e-5
        assert (value - alone[key]).abs().max() <= bound, key


def test_dropout_masks_differ_by_rank_only(torchrun_fits):
    """With dropout the ranks draw their own masks: same training, another random sample."""
    _, reports = torchrun_fits
    parallel, single = reports["sasrec-dropout"], reports["sasrec-dropout-single"]
    np.testing.assert_allclose(parallel["loss_curve"], single["loss_curve"], rtol=0.02)


def test_model_fitted_under_torchrun_loads_in_one_process(torchrun_fits):
    out, _ = torchrun_fits
    model = skcreate.load(out / "create.skc")
    assert model.world_size_ == 2
    state = weights(out, "create", "rank0")
    assert all(torch.equal(value, state[key])
               for key, value in model.module_.state_dict().items())
    df = make_interactions(n_users=155, n_items=60, random_state=0)
    recs = model.recommend(df[df.user_id < 5], k=3)
    assert recs["rank"].tolist() == [1, 2, 3] * 5


def test_sharded_validation_counts_every_user_once():
    df = make_interactions(n_users=155, n_items=60, random_state=0)
    model = SASRecRecommender(n_factors=16, n_blocks=1, max_len=10, epochs=1,
                              trainer=Trainer(early_stopping=True), random_state=0).fit(df)
    _, (history, targets) = model.trainer.validation_split(model.interactions_)
    n = history.n_users
    assert n % 2 == 1  # the torchrun fits above validate on a count 2 does not divide
    whole = _validation_score(model, history, targets)
    for world in (2, 3, 4, n + 2):
        shards = [distributed.shard_rows(n, rank, world) for rank in range(world)]
        assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(n))
        sums = [_validation_sums(model, _user_subset(history, rows), targets[rows])
                for rows in shards]
        assert sum(count for _, count in sums) == n
        assert sum(total for total, _ in sums) / n == pytest.approx(whole, rel=1e-12)


def test_sharded_batches_hold_each_example_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 9, 37)
    sequences = np.zeros((37, 9), dtype=np.int64)
    for row, length in enumerate(lengths):
        sequences[row, -length:] = rng.integers(1, 20, length)
    world = 3
    # 37 users in batches of 8: the last batch of 5 (< 2 * world) joins the one before
    shards = [list(ShardedBatches(SequenceBatches(sequences, 8, np.random.default_rng(1)),
                                  rank, world)(0)) for rank in range(world)]
    assert len(shards[0]) == 4
    users = np.concatenate([batch.users.numpy() for shard in shards for batch in shard])
    assert np.array_equal(np.sort(users), np.arange(37))
    for batches in zip(*shards):
        assert sum(float(batch.shard_weight) for batch in batches) == pytest.approx(world)
        assert all(len(batch.users) >= 2 for batch in batches)
        # a shard drops the padding columns it does not need
        assert all(bool((batch.inputs[:, 0] != 0).any()) for batch in batches)
    # 23 edges in batches of 10: the last 3 (< world = 4) go whole to every rank, unweighted
    edges = [list(ShardedBatches(EdgeBatches(np.arange(23), np.arange(23) % 5, 10, 5, 1,
                                             np.random.default_rng(2)), rank, 4)(0))
             for rank in range(4)]
    for batches in list(zip(*edges))[:-1]:
        assert sum(float(batch.shard_weight) for batch in batches) == pytest.approx(4)
    assert all(shard[-1].shard_weight is None and len(shard[-1].users) == 3 for shard in edges)
    sharded = np.concatenate([batch.users.numpy() for shard in edges for batch in shard[:-1]])
    assert np.array_equal(np.sort(np.concatenate([sharded, edges[0][-1].users.numpy()])),
                          np.arange(23))


def test_helpers_are_no_ops_in_one_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    assert (distributed.world_size(), distributed.rank()) == (1, 0)
    assert distributed.is_main_process() and not distributed.is_distributed()
    rows = torch.randn(3, 2)
    assert distributed.gather_rows(rows) is rows
    assert distributed.all_reduce_sum(rows) is rows
    assert distributed.setup(torch.device("cpu")) == (torch.device("cpu"), False)
    with pytest.raises(ValueError, match="'distributed' parameter of Trainer"):
        SASRecRecommender(trainer=Trainer(distributed=True)).fit(
            make_interactions(n_users=20, n_items=10))


def test_sharded_joint_batches_gather_for_the_alignment_and_weigh_each_part():
    rng = np.random.default_rng(0)
    sequences = np.zeros((12, 5), dtype=np.int64)
    sequences[:, -3:] = rng.integers(1, 9, (12, 3))
    edges = EdgeBatches(np.arange(12), np.arange(12) % 8, 6, 8, 2, np.random.default_rng(1))
    joint = JointBatches(SequenceBatches(sequences, 6, np.random.default_rng(2)), edges)
    batch = next(iter(joint(0)))
    # in one process the rows are the alignment's as they are, the terms unweighed
    rows = torch.randn(4, 2)
    assert batch.gather(rows) is rows
    terms = {"local": torch.tensor(1.0), "global": torch.tensor(2.0), "align": torch.tensor(3.0)}
    assert batch.weigh(terms) == terms
    shard = next(iter(ShardedBatches(joint, 1, 2)(0)))
    assert shard.gather is distributed.gather_rows
    weighed = shard.weigh(terms)
    assert weighed["local"] == shard.sequence.shard_weight
    assert weighed["global"] == 2 * shard.edges.shard_weight
    # the alignment reads gathered rows: the same on every rank, so never reweighed
    assert weighed["align"] == 3.0
