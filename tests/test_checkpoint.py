"""Resumable fits: a killed or interrupted fit resumes from its checkpoint and ends as an
uninterrupted one; a checkpoint from another fit, or a tampered one, is refused."""

import hashlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skcreate import CREATERecommender, LightGCNRecommender, SASRecRecommender, \
    UltraGCNRecommender
from skcreate.training.checkpoint import Checkpoint, CheckpointError
from skcreate.data.datasets import make_interactions
from skcreate.nn import LightGCNEncoder, ScalableCrossEntropy
from skcreate.training import Trainer

DATA = dict(n_users=120, n_items=50, random_state=0)

CONFIGS = {
    "sasrec-sce": (SASRecRecommender, dict(n_factors=8, epochs=5, loss=ScalableCrossEntropy(
        n_buckets=4, bucket_size_x=8, bucket_size_y=8))),
    "create-early-stopping": (CREATERecommender, dict(
        n_factors=8, epochs=4, warmup_epochs=2, graph_batch_size=64, batch_size=32)),
    "lightgcn-edge-dropout": (LightGCNRecommender, dict(n_factors=8, epochs=5, batch_size=256,
                                                        edge_dropout=0.2)),
    # the scalable paths: LazyAdam's moments and the historical layers refreshed on resume
    "lightgcn-historical": (LightGCNRecommender, dict(
        n_factors=8, epochs=5, batch_size=256, propagation="historical", row_sparse=True,
        fanout=3, walks=2)),
    "ultragcn-row-sparse": (UltraGCNRecommender, dict(n_factors=8, epochs=5, batch_size=256,
                                                      row_sparse=True)),
    "create-light-steps": (CREATERecommender, dict(
        n_factors=8, epochs=4, warmup_epochs=2, graph_batch_size=64, batch_size=32,
        graph_encoder=LightGCNEncoder(n_layers=2, propagation="historical", row_sparse=True,
                                      fanout=3))),
}


class Stop(Exception):
    pass


def stop_after(n):
    def callback(epoch, elapsed, loss):
        if epoch == n:
            raise Stop
    return callback


def same_weights(a, b):
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def df():
    return make_interactions(**DATA)


@pytest.mark.parametrize("name", CONFIGS)
def test_resume_after_a_crash_equals_an_uninterrupted_fit(name, df, tmp_path):
    cls, params = CONFIGS[name]
    stopping = dict(early_stopping=True, patience=10) if cls is CREATERecommender else {}
    path = tmp_path / "fit.ckpt"
    full = cls(random_state=3, trainer=Trainer(**stopping), **params).fit(df)
    with pytest.raises(Stop):
        cls(random_state=3, trainer=Trainer(checkpoint_path=path, callbacks=[stop_after(3)],
                                            **stopping), **params).fit(df)
    assert path.exists()
    resumed = cls(random_state=3, trainer=Trainer(checkpoint_path=str(path), **stopping),
                  **params).fit(df)
    assert resumed.resumed_epochs_ == 2
    assert resumed.loss_curve_ == full.loss_curve_
    np.testing.assert_array_equal(resumed.validation_scores_, full.validation_scores_)
    assert resumed.best_epoch_ == full.best_epoch_
    assert same_weights(resumed, full)
    assert resumed.recommend(df, k=5).equals(full.recommend(df, k=5))
    if name == "create-light-steps":
        assert not resumed.module_.neighbour_gradients
        assert not resumed.module_.warmup_neighbour_gradients
    # a finished fit leaves nothing to resume
    assert not path.exists()


KILLED_SCRIPT = textwrap.dedent("""
    import sys, time
    import torch
    from skcreate import CREATERecommender
    from skcreate.data.datasets import make_interactions
    from skcreate.training import Trainer
    torch.set_num_threads(int(sys.argv[2]))
    df = make_interactions(**{data!r})
    slow = lambda epoch, elapsed, loss: time.sleep(0.3)
    CREATERecommender(random_state=5, trainer=Trainer(checkpoint_path=sys.argv[1],
                                                      callbacks=[slow], **{stopping!r}),
                      **{params!r}).fit(df)
""")


def test_a_killed_process_resumes_to_the_same_weights(df, tmp_path):
    params = CONFIGS["create-early-stopping"][1]
    path = tmp_path / "fit.ckpt"
    stopping = dict(early_stopping=True, patience=10)
    script = KILLED_SCRIPT.format(data=DATA, params=params, stopping=stopping)
    # the same thread count as this process, so that both compute the same bits
    child = subprocess.Popen([sys.executable, "-c", script, str(path),
                              str(torch.get_num_threads())],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not path.exists():
        assert child.poll() is None, child.communicate()[1].decode()
        assert time.monotonic() < deadline, "the child wrote no checkpoint"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    recorded = len(torch.load(path, weights_only=True)["result"]["loss_curve"])
    resumed = CREATERecommender(random_state=5, trainer=Trainer(checkpoint_path=path, **stopping),
                                **params).fit(df)
    full = CREATERecommender(random_state=5, trainer=Trainer(**stopping), **params).fit(df)
    # the fit resumed after the last epoch the killed process wrote, not from the start
    assert resumed.resumed_epochs_ == recorded
    assert recorded < len(full.loss_curve_)
    assert resumed.loss_curve_ == full.loss_curve_
    assert same_weights(resumed, full)
    # the rename is atomic: no temporary file is left behind by the kill or the resume
    assert os.listdir(tmp_path) == []


def test_ctrl_c_keeps_the_checkpoint_and_resume_finishes(df, tmp_path):
    path = tmp_path / "fit.ckpt"

    def interrupt(epoch, elapsed, loss):
        if epoch == 2:
            raise KeyboardInterrupt

    params = dict(n_factors=8, epochs=4, random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        stopped = SASRecRecommender(trainer=Trainer(checkpoint_path=path, callbacks=[interrupt],
                                                    on_interrupt="stop"), **params).fit(df)
    assert stopped.interrupted_ and path.exists()
    resumed = SASRecRecommender(trainer=Trainer(checkpoint_path=path), **params).fit(df)
    full = SASRecRecommender(n_factors=8, epochs=4, random_state=0).fit(df)
    # the callback of epoch 2 ran before its checkpoint write
    assert resumed.resumed_epochs_ == 1 and same_weights(resumed, full)


def test_unseeded_fit_resumes_with_the_seed_it_started_with(df, tmp_path):
    path = tmp_path / "fit.ckpt"
    params = dict(n_factors=8, epochs=4)
    with pytest.raises(Stop):
        SASRecRecommender(trainer=Trainer(checkpoint_path=path, callbacks=[stop_after(3)]),
                          **params).fit(df)
    recorded = torch.load(path, weights_only=True)["result"]["loss_curve"]
    resumed = SASRecRecommender(trainer=Trainer(checkpoint_path=path), **params).fit(df)
    assert resumed.loss_curve_[:2] == recorded


def test_every_n_epochs(df, tmp_path):
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Stop):
        SASRecRecommender(n_factors=8, epochs=6, random_state=0, trainer=Trainer(
            checkpoint_path=path, checkpoint_every=2, callbacks=[stop_after(4)])).fit(df)
    # epoch 4's write comes after its callbacks, which stopped the fit: epoch 2's is kept
    assert torch.load(path, weights_only=True)["position"] == (0, 2)


@pytest.mark.parametrize("change", [{"learning_rate": 1e-2}, {"random_state": 4}, "data"])
def test_a_checkpoint_of_another_fit_is_refused(change, df, tmp_path):
    path = tmp_path / "fit.ckpt"
    params = dict(n_factors=8, epochs=4, random_state=3, trainer=Trainer(checkpoint_path=path))
    with pytest.raises(Stop):
        SASRecRecommender(**{**params, "trainer": Trainer(checkpoint_path=path,
                                                          callbacks=[stop_after(2)])}).fit(df)
    other = df.iloc[1:] if change == "data" else df
    if change != "data":
        params.update(change)
    with pytest.raises(CheckpointError, match="other parameters or data"):
        SASRecRecommender(**params).fit(other)
    assert path.exists()


def test_run_only_parameters_do_not_block_a_resume(df, tmp_path):
    path = tmp_path / "fit.ckpt"
    params = dict(n_factors=8, epochs=3, random_state=3)
    with pytest.raises(Stop):
        SASRecRecommender(trainer=Trainer(checkpoint_path=path, callbacks=[stop_after(2)]),
                          **params).fit(df)
    resumed = SASRecRecommender(trainer=Trainer(checkpoint_path=path, verbose=True,
                                                on_interrupt="stop"), **params).fit(df)
    assert resumed.resumed_epochs_ == 1


def test_a_tampered_checkpoint_is_refused_without_running_it(df, tmp_path):
    path = tmp_path / "fit.ckpt"
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = pickle.dumps({"format": 1, "payload": Payload()}, protocol=2)
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match="has no checksum"):
        SASRecRecommender(n_factors=8, epochs=2, trainer=Trainer(checkpoint_path=path)).fit(df)
    # a valid checksum does not make a pickle loadable: it is still read without code
    path.write_bytes(with_checksum(payload))
    with pytest.raises(CheckpointError, match="cannot read the checkpoint"):
        SASRecRecommender(n_factors=8, epochs=2, trainer=Trainer(checkpoint_path=path)).fit(df)
    assert not marker.exists()
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="no checksum"):
        Checkpoint(path).load()


def with_checksum(payload):
    return payload + b"\nskcreate-sha256:" + hashlib.sha256(payload).hexdigest().encode()


def interrupted_fit(df, path):
    """A SASRec fit stopped after 1 of 3 epochs, leaving its checkpoint at ``path``."""
    params = dict(n_factors=8, epochs=3, random_state=0, trainer=Trainer(checkpoint_path=path))
    with pytest.raises(Stop):
        SASRecRecommender(**{**params, "trainer": Trainer(checkpoint_path=path,
                                                          callbacks=[stop_after(2)])}).fit(df)
    assert path.exists()
    return params


@pytest.mark.parametrize("where", [0.5, -10])
def test_a_damaged_checkpoint_is_refused_not_resumed(df, tmp_path, where):
    path = tmp_path / "fit.ckpt"
    params = interrupted_fit(df, path)
    content = bytearray(path.read_bytes())
    # one flipped bit in the weights' bytes, or in the checksum itself
    content[int(len(content) * where) if where > 0 else where] ^= 0x01
    path.write_bytes(bytes(content))
    model = SASRecRecommender(**params)
    with pytest.raises(CheckpointError, match=r"fit\.ckpt' is damaged \(its SHA-256"):
        model.fit(df)
    with pytest.raises(NotFittedError):
        model.recommend(k=1)


def test_a_checkpoint_held_by_a_live_fit_is_refused_before_training(df, tmp_path):
    path = tmp_path / "fit.ckpt"
    lock = tmp_path / "fit.ckpt.lock"
    lock.write_text(f"{os.getpid()} {socket.gethostname()}")
    trained = []
    model = SASRecRecommender(n_factors=8, epochs=1, trainer=Trainer(
        checkpoint_path=path, callbacks=[lambda *args: trained.append(args)]))
    with pytest.raises(CheckpointError, match=r"in use by another fit \(process \d+ .*give "
                                              r"each candidate its own path, or none"):
        model.fit(df)
    # nothing trained, and the live fit's lock is left alone
    assert trained == [] and lock.exists() and not path.exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(df, tmp_path):
    path = tmp_path / "fit.ckpt"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    (tmp_path / "fit.ckpt.lock").write_text(f"{child.pid} {socket.gethostname()}")
    model = SASRecRecommender(n_factors=8, epochs=1, trainer=Trainer(checkpoint_path=path)).fit(df)
    assert model.n_epochs_ == 1
    # a finished fit removes its checkpoint and its lock
    assert os.listdir(tmp_path) == []


def test_two_holders_of_one_checkpoint_lock_cannot_coexist(tmp_path):
    with Checkpoint(tmp_path / "fit.ckpt").lock():
        with pytest.raises(CheckpointError, match="in use by another fit"):
            with Checkpoint(tmp_path / "fit.ckpt").lock():
                pass
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("params, match", [
    ({"checkpoint_every": 0}, "checkpoint_every"),
    ({"checkpoint_every": 1.5}, "checkpoint_every"),
    ({"checkpoint_path": 3}, "checkpoint_path"),
    ({"checkpoint_path": "/no/such/folder/fit.ckpt"}, "does not exist"),
])
def test_bad_checkpoint_parameters(params, match, df):
    with pytest.raises(ValueError, match=match):
        SASRecRecommender(n_factors=8, epochs=1, trainer=Trainer(**params)).fit(df)


def test_a_partial_file_of_a_killed_write_is_removed_by_the_next_lock_holder(tmp_path):
    checkpoint = Checkpoint(tmp_path / "fit.ckpt")
    # what a write killed before its rename leaves: a temporary of the checkpoint's name
    checkpoint.save({"weights": torch.zeros(3)})
    handle, leftover = tempfile.mkstemp(prefix=checkpoint._temporary_prefix(), suffix=".tmp",
                                        dir=tmp_path)
    os.close(handle)
    # other checkpoints' temporaries in the same folder, and files of other programs
    others = [tmp_path / ".fit.ckpt2.skcreate-abcdefgh.tmp",
              tmp_path / ".fit.skcreate-abcdefgh.tmp",
              tmp_path / ".fit.ckpt.skcreate-abc.tmp", tmp_path / "notes.tmp"]
    for other in others:
        other.write_text("kept")
    with checkpoint.lock():
        assert not os.path.exists(leftover)
        assert all(other.read_text() == "kept" for other in others)
    # the checkpoint itself is untouched
    assert torch.equal(Checkpoint(tmp_path / "fit.ckpt").load()["weights"], torch.zeros(3))


def test_a_live_holder_keeps_its_partial_files(tmp_path):
    checkpoint = Checkpoint(tmp_path / "fit.ckpt")
    with checkpoint.lock():
        handle, writing = tempfile.mkstemp(prefix=checkpoint._temporary_prefix(),
                                           suffix=".tmp", dir=tmp_path)
        os.close(handle)
        with pytest.raises(CheckpointError, match="in use"):
            with Checkpoint(tmp_path / "fit.ckpt").lock():
                pass
        assert os.path.exists(writing)
