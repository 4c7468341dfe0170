"""Scale on one machine: SCE with sampled candidates and row-sparse updates, chunked serving,
columnar input, bf16 autocast, no host reads in the training step, the device benchmark."""

import copy
import functools
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import torch
from sklearn.base import clone
from torch.utils._python_dispatch import TorchDispatchMode

from skcreate import (CREATERecommender, LightGCNRecommender, PopularRecommender,
                      SASRecRecommender, UltraGCNRecommender)
from skcreate.data.datasets import make_interactions
from skcreate.data.interactions import Interactions, check_interactions
from skcreate.nn import LightGCNEncoder, SASRecEncoder, ScalableCrossEntropy
from skcreate.nn.item_table import ItemTable
from skcreate.nn.losses import scalable_cross_entropy
from skcreate.nn import _adam_rows, optim
from skcreate.nn.optim import LazyAdam, clip_grad_norm
from skcreate.training import Trainer

SMALL = {"n_factors": 8, "n_blocks": 1, "max_len": 6, "batch_size": 16, "epochs": 1,
         "random_state": 0}
# CREATE's transformer options live on its sequence encoder
SMALL_CREATE = {"n_factors": 8, "batch_size": 16, "epochs": 1, "random_state": 0,
                "sequence_encoder": SASRecEncoder(n_blocks=1, max_len=6)}


@pytest.fixture(scope="module")
def X():
    return make_interactions(n_users=60, n_items=120, random_state=0)


def _encoded(X):
    return Interactions.from_frame(check_interactions(X), "user_id", "item_id", "timestamp")[0]


# --- SCE: sampled candidates, row-sparse gradients, LazyAdam -------------------------------

def test_sce_candidates_come_from_the_sample_only():
    torch.manual_seed(0)
    hidden, weight = torch.randn(20, 4), torch.randn(50, 4, requires_grad=True)
    targets = torch.randint(0, 50, (20,))
    generator = torch.Generator().manual_seed(3)
    read = []

    def rows(codes):
        read.append(codes)
        return weight[codes]

    scalable_cross_entropy(hidden, targets, weight, bucket_size_y=5, n_candidates=10,
                           generator=generator, item_rows=rows).backward()
    # the same draws as inside the loss: projections first, then the sample
    generator.manual_seed(3)
    torch.randn(4, max(1, int(2 * np.sqrt(20))), generator=generator)
    sample = set(torch.randperm(50, generator=generator)[:10].tolist())
    assert set(read[0].unique().tolist()) <= sample
    touched = set(torch.nonzero(weight.grad.abs().sum(1)).ravel().tolist())
    assert touched <= sample | set(targets.tolist())


def test_sce_sample_covering_the_catalogue_is_the_plain_loss():
    torch.manual_seed(0)
    hidden, weight = torch.randn(30, 8), torch.randn(25, 8)
    targets = torch.randint(0, 25, (30,))
    plain = scalable_cross_entropy(hidden, targets, weight, generator=torch.Generator())
    covered = scalable_cross_entropy(hidden, targets, weight, generator=torch.Generator(),
                                     n_candidates=25)
    torch.testing.assert_close(plain, covered)


def test_sparse_table_lookup_gives_row_sparse_gradient_of_the_read_rows():
    table = ItemTable(n_items=100, n_factors=4, sparse=True)
    table.take(torch.tensor([3, 3, 7])).sum().backward()
    grad = table.weight.grad
    assert grad.is_sparse
    assert sorted(set(grad.coalesce().indices()[0].tolist())) == [4, 8]


def test_lazy_adam_dense_matches_torch_adam():
    torch.manual_seed(0)
    ours, theirs = torch.randn(5, 3, requires_grad=True), None
    theirs = ours.detach().clone().requires_grad_()
    opt_ours = LazyAdam([ours], lr=0.1, weight_decay=0.01)
    opt_theirs = torch.optim.Adam([theirs], lr=0.1, weight_decay=0.01)
    for step in range(5):
        target = torch.randn(5, 3, generator=torch.Generator().manual_seed(step))
        for param, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            ((param - target) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(ours, theirs)


def test_lazy_adam_sparse_updates_only_rows_with_gradient_and_matches_dense_on_them():
    torch.manual_seed(0)
    sparse = torch.nn.Embedding(6, 3, sparse=True)
    dense = torch.nn.Embedding(6, 3)
    dense.load_state_dict(sparse.state_dict())
    before = sparse.weight.detach().clone()
    opt_sparse, opt_dense = LazyAdam(sparse.parameters(), lr=0.1), LazyAdam(dense.parameters(),
                                                                            lr=0.1)
    rows = torch.tensor([1, 4, 4])
    for module, opt in ((sparse, opt_sparse), (dense, opt_dense)):
        opt.zero_grad()
        module(rows).pow(2).sum().backward()
        opt.step()
    changed = (sparse.weight != before).any(1)
    assert changed.tolist() == [False, True, False, False, True, False]
    torch.testing.assert_close(sparse.weight, dense.weight)


def _lazy_adam_reference(weight, moments, rows, grad, step, lr, weight_decay,
                         betas=(0.9, 0.999), eps=1e-8):
    """TensorFlow's LazyAdam on ``rows`` of ``weight``, by its formulas (in place)."""
    exp_avg, exp_avg_sq = moments
    grad = grad + weight_decay * weight[rows]
    exp_avg[rows] = betas[0] * exp_avg[rows] + (1 - betas[0]) * grad
    exp_avg_sq[rows] = betas[1] * exp_avg_sq[rows] + (1 - betas[1]) * grad ** 2
    denom = (exp_avg_sq[rows] / (1 - betas[1] ** step)).sqrt() + eps
    weight[rows] -= lr / (1 - betas[0] ** step) * exp_avg[rows] / denom


def test_lazy_adam_updates_read_rows_by_its_formulas_with_dense_parameters_beside():
    torch.manual_seed(0)
    table = torch.nn.Embedding(7, 3, sparse=True)
    linear = torch.nn.Linear(3, 1)
    reference = table.weight.detach().clone()
    moments = torch.zeros(2, 7, 3)
    dense = torch.optim.Adam(copy.deepcopy(linear).parameters(), lr=0.05, weight_decay=0.01)
    ours = LazyAdam([*table.parameters(), *linear.parameters()], lr=0.05, weight_decay=0.01)
    expected_linear = dense.param_groups[0]["params"]
    for step, rows in enumerate([[1, 4, 4], [0, 4], [6]], start=1):
        rows = torch.tensor(rows)
        ours.zero_grad()
        dense.zero_grad()
        linear(table(rows)).pow(2).sum().backward()
        grad = table.weight.grad.coalesce()
        torch.nn.functional.linear(reference[rows], *expected_linear).pow(2).sum().backward()
        _lazy_adam_reference(reference, moments, grad.indices()[0], grad.values(), step,
                             lr=0.05, weight_decay=0.01)
        ours.step()
        dense.step()
        torch.testing.assert_close(table.weight.detach(), reference)
        for got, expected in zip(linear.parameters(), expected_linear):
            torch.testing.assert_close(got, expected)
    # rows 2, 3 and 5 were never read: untouched, without moments
    assert not moments[:, [2, 3, 5]].any()
    assert not ours.state[table.weight]["exp_avg"][[2, 3, 5]].any()


def test_lazy_adam_continues_from_torch_adams_step_count():
    # an update may hand LazyAdam the state of torch's Adam (its count in a tensor): the next
    # step's bias correction counts on
    torch.manual_seed(0)
    table = torch.nn.Embedding(4, 2, sparse=True)
    reference = table.weight.detach().clone()
    moments = torch.rand(2, 4, 2)
    optimizer = LazyAdam(table.parameters(), lr=0.1)
    optimizer.state[table.weight] = {"step": torch.tensor(3.0), "exp_avg": moments[0].clone(),
                                     "exp_avg_sq": moments[1].clone()}
    rows = torch.tensor([0, 2])
    table(rows).sum().backward()
    optimizer.step()
    _lazy_adam_reference(reference, moments, rows, torch.ones(2, 2), 4, lr=0.1,
                         weight_decay=0.0)
    torch.testing.assert_close(table.weight.detach(), reference)
    assert optimizer.state[table.weight]["step"] == 4


def _torch_rows_update(monkeypatch):
    """LazyAdam's row updates by torch's kernels, as on a GPU."""
    monkeypatch.setattr(_adam_rows, "supported", lambda *args: False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_compiled_row_updates_equal_torchs(monkeypatch, dtype, weight_decay):
    torch.manual_seed(0)
    tables = [torch.nn.Embedding(50, 6, sparse=True).to(dtype) for _ in range(2)]
    tables[1].load_state_dict(tables[0].state_dict())
    optimizers = [LazyAdam(table.parameters(), lr=0.05, weight_decay=weight_decay)
                  for table in tables]
    reads = [torch.randint(0, 50, (30,), generator=torch.Generator().manual_seed(step))
             for step in range(4)]
    for index, (table, optimizer) in enumerate(zip(tables, optimizers)):
        if index:
            _torch_rows_update(monkeypatch)
        for rows in reads:
            optimizer.zero_grad()
            table(rows).pow(3).sum().backward()
            optimizer.step()
    torch.testing.assert_close(tables[0].weight, tables[1].weight)
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(optimizers[0].state[tables[0].weight][key],
                                   optimizers[1].state[tables[1].weight][key])
    assert optimizers[0].state[tables[0].weight]["step"] == 4


def test_compiled_row_updates_do_not_depend_on_the_threads(monkeypatch):
    torch.manual_seed(0)
    weights = torch.randn(3000, 8)
    rows = torch.randperm(3000)[:2000].sort().values
    values = torch.randn(2000, 8)
    results = []
    for min_rows, threads in ((10**9, 1), (100, 2), (100, 3)):
        monkeypatch.setattr(_adam_rows, "MIN_ROWS_PER_THREAD", min_rows)
        monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
        param, exp_avg, exp_avg_sq = weights.clone(), torch.zeros(3000, 8), torch.ones(3000, 8)
        _adam_rows.adam_rows(param, exp_avg, exp_avg_sq, rows, values, (0.9, 0.999), 0.01,
                             0.1, 0.5, 1e-8)
        results.append((param, exp_avg, exp_avg_sq))
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))
    untouched = torch.ones(3000, dtype=torch.bool)
    untouched[rows] = False
    assert torch.equal(results[0][0][untouched], weights[untouched])


def test_half_tables_update_by_torch():
    table = torch.nn.Embedding(10, 4, sparse=True).to(torch.bfloat16)
    assert not _adam_rows.supported(table.weight, table.weight[:2], table.weight)
    before = table.weight.detach().clone()
    optimizer = LazyAdam(table.parameters(), lr=0.1)
    table(torch.tensor([3])).float().sum().backward()
    optimizer.step()
    changed = (table.weight != before).any(1)
    assert changed.tolist() == [i == 3 for i in range(10)]


def _update_rows_on_two_threads(weights, rows):
    _adam_rows.adam_rows(weights, torch.zeros_like(weights), torch.zeros_like(weights), rows,
                         torch.ones(len(rows), weights.shape[1]), (0.9, 0.999), 0.0, 0.1, 1.0,
                         1e-8)
    if not (weights[rows] < 0).all():
        raise SystemExit(1)


def _update_rows_in_a_child(weights, rows):
    # torch's own threads hang in a forked child (GNU OpenMP): its steps take one
    torch.set_num_threads(1)
    torch.get_num_threads = lambda: 2
    _update_rows_on_two_threads(weights, rows)


def test_compiled_row_updates_run_in_a_forked_child_and_in_threads(monkeypatch):
    # the update's threads belong to the process that made them: a forked child makes its
    # own (the parent's do not exist in it), and threads updating at once share them
    monkeypatch.setattr(_adam_rows, "MIN_ROWS_PER_THREAD", 100)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    rows = torch.arange(0, 2000, 2)
    _update_rows_on_two_threads(torch.zeros(2000, 4), rows)
    child = multiprocessing.get_context("fork").Process(target=_update_rows_in_a_child,
                                                        args=(torch.zeros(2000, 4), rows))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    tables = [torch.zeros(2000, 4) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda table: _update_rows_on_two_threads(table, rows), tables))
    for table in tables:
        assert (table[rows] < 0).all() and not table[1::2].any()


def test_compiled_row_updates_refuse_rows_outside_the_table():
    # the kernel writes without bounds checks: the error comes before any row changes
    weights = torch.zeros(5, 2)
    for rows, values, error in ((torch.tensor([1, 5]), torch.ones(2, 2), IndexError),
                                (torch.tensor([-1, 2]), torch.ones(2, 2), IndexError),
                                (torch.tensor([1, 2]), torch.ones(3, 2), ValueError)):
        with pytest.raises(error):
            _adam_rows.adam_rows(weights, torch.zeros(5, 2), torch.zeros(5, 2), rows, values,
                                 (0.9, 0.999), 0.0, 0.1, 1.0, 1e-8)
        assert not weights.any()


def test_clip_grad_norm_counts_sparse_rows_once():
    torch.manual_seed(0)
    sparse, dense = torch.nn.Embedding(8, 3, sparse=True), torch.nn.Linear(3, 2)
    copy_sparse, copy_dense = torch.nn.Embedding(8, 3), torch.nn.Linear(3, 2)
    copy_sparse.load_state_dict(sparse.state_dict())
    copy_dense.load_state_dict(dense.state_dict())
    rows = torch.tensor([2, 2, 5])
    dense(sparse(rows)).sum().backward()
    copy_dense(copy_sparse(rows)).sum().backward()
    total = clip_grad_norm([*sparse.parameters(), *dense.parameters()], 0.5)
    expected = torch.nn.utils.clip_grad_norm_([*copy_sparse.parameters(),
                                               *copy_dense.parameters()], 0.5)
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(sparse.weight.grad.to_dense(), copy_sparse.weight.grad)
    torch.testing.assert_close(dense.weight.grad, copy_dense.weight.grad)


def test_sasrec_sce_steps_are_row_sparse_lazy_and_repeat_with_the_seed(X):
    params = dict(SMALL, loss=ScalableCrossEntropy(n_candidates=8, bucket_size_y=4))
    first = SASRecRecommender(**params).fit(X)
    again = SASRecRecommender(**params).fit(X)
    for a, b in zip(first.module_.state_dict().values(), again.module_.state_dict().values()):
        assert torch.equal(a, b)
    assert np.isfinite(first.loss_curve_).all()
    assert first.module_.item_table.sparse
    assert isinstance(first._optimizer(first.module_)([torch.zeros(1)]), LazyAdam)
    # one step: the table's gradient holds the rows the step read, far fewer than the table
    module, (stage,) = first._build(_encoded(X), np.random.default_rng(0))
    batch = next(iter(stage.batches(0)))
    module(batch)["local"].backward()
    grad = module.item_table.weight.grad.coalesce()
    read = set(grad.indices()[0].tolist())
    inputs = set(batch.inputs.unique().tolist()) - {ItemTable.padding}
    assert inputs <= read and len(read) < len(module.item_table.weight)


def test_create_keeps_dense_item_table_with_sce(X):
    model = CREATERecommender(warmup_epochs=0, graph_batch_size=32, loss="sce",
                              **SMALL_CREATE).fit(X)
    assert not model.module_.item_table.sparse


def test_create_sce_with_row_sparse_graph_has_a_row_sparse_item_table(X):
    # both readers of the shared table read rows: the joint step's table gradient holds the
    # rows it read, with the dense table's loss and gradient values ("subgraph": "auto"
    # propagates this small graph whole)
    model = CREATERecommender(warmup_epochs=0, graph_batch_size=32, loss="sce",
                              **SMALL_CREATE).set_params(graph_encoder__row_sparse=True,
                                                         graph_encoder__propagation="subgraph")
    steps = []
    for sparse in (True, False):
        torch.manual_seed(0)
        module, (_, joint) = model._build(_encoded(X), np.random.default_rng(0))
        assert module.item_table.sparse
        module.item_table.sparse = sparse
        batch = next(iter(joint.batches(0)))
        terms = module(batch)
        total = sum(joint.weights.get(name, 1.0) * value for name, value in terms.items())
        total.backward()
        steps.append((total.detach(), module.item_table.weight.grad))
    (loss, grad), (dense_loss, dense_grad) = steps
    assert grad.is_sparse and not dense_grad.is_sparse
    assert len(grad.coalesce().indices()[0]) < len(dense_grad)
    torch.testing.assert_close(loss, dense_loss)
    torch.testing.assert_close(grad.to_dense(), dense_grad, rtol=1e-5, atol=1e-7)
    fitted = clone(model).fit(X)
    assert fitted.module_.item_table.sparse and np.isfinite(fitted.loss_curve_).all()


# --- serving --------------------------------------------------------------------------------

def _reference(model, data, k):
    """Scores of every user in one pass, seen items masked, top-k: today's algorithm."""
    with torch.no_grad():
        scores = model._score(data, np.arange(data.n_users)).float()
    seen = data.to_csr().tocoo()
    scores[seen.row, seen.col] = -torch.inf
    return scores, torch.topk(scores, k, dim=1)


@pytest.mark.parametrize("make", [
    lambda: SASRecRecommender(**SMALL),
    lambda: CREATERecommender(warmup_epochs=1, graph_batch_size=32, **SMALL_CREATE),
    lambda: LightGCNRecommender(n_factors=8, epochs=1, random_state=0),
], ids=["SASRec", "CREATE", "LightGCN"])
def test_chunked_recommend_equals_one_pass(X, make):
    model = make().fit(X)
    k = 5
    data = model._encode_histories(X)
    if isinstance(model, LightGCNRecommender):
        with torch.no_grad():
            model._embeddings = model.module_.encoder.propagate()
    scores, top = _reference(model, data, k)
    if isinstance(model, LightGCNRecommender):
        del model._embeddings
    model._recommend_batch_size = 7  # many batches and chunks on a small data set
    recs = model.recommend(X, k=k)
    values = top.values.numpy()
    found = np.isfinite(values)
    assert found.all(axis=1).mean() > 0.8  # most users still have k unseen items
    assert len(recs) == found.sum()
    got = recs["item_id"].to_numpy()
    expected = model.item_ids_.take(top.indices.numpy()[found]).to_numpy()
    np.testing.assert_allclose(recs["score"].to_numpy(), values[found], rtol=1e-5, atol=1e-6)
    # batches of other lengths may round the last float bit: only near-ties may swap
    gap = np.diff(np.where(found, values, -1e30), axis=1)
    clear = np.ones_like(values, dtype=bool)
    clear[:, 1:] &= gap < -1e-5
    clear[:, :-1] &= gap < -1e-5
    assert clear[found].mean() > 0.5
    assert (got[clear[found]] == expected[clear[found]]).all()
    assert (recs["user_id"].to_numpy() == data.user_ids.to_numpy().repeat(k)[found.ravel()]).all()
    assert recs["user_id"].is_monotonic_increasing
    assert recs.index.equals(pd.RangeIndex(len(recs)))
    # the scores of the reference hold the masked history
    assert np.isfinite(scores.numpy()).any()


def test_iter_recommend_streams_chunks_with_bounded_work(X):
    model = SASRecRecommender(**SMALL).fit(X)
    model._recommend_batch_size = 8
    calls = []
    original = model._batch_top_k

    def counted(*args):
        calls.append(len(args[1]))
        return original(*args)

    model._batch_top_k = counted
    stream = model.iter_recommend(X, k=4, chunk_size=16)
    first = next(stream)
    # the first frame is built from its own chunk's two batches, nothing more
    assert sum(calls) == 16 and first["user_id"].nunique() == 16
    frames = [first, *stream]
    del model._batch_top_k
    whole = model.recommend(X, k=4)
    pd.testing.assert_frame_equal(pd.concat(frames), whole)
    assert len(frames) == int(np.ceil(X.user_id.nunique() / 16))


@pytest.mark.parametrize("chunk_size", [0, -1, 2.5, "3", True])
def test_iter_recommend_names_a_bad_chunk_size(chunk_size, X):
    model = PopularRecommender().fit(X)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        next(model.iter_recommend(X, k=4, chunk_size=chunk_size))


# --- input ----------------------------------------------------------------------------------

def test_columnar_inputs_give_the_pandas_results(X, tmp_path):
    wide = X.assign(extra=np.arange(len(X)).astype(str))
    path = tmp_path / "events.parquet"
    wide.to_parquet(path, index=False)
    sources = {"pyarrow": pa.Table.from_pandas(wide, preserve_index=False),
               "polars": pl.from_pandas(wide), "lazy": pl.from_pandas(wide).lazy(),
               "parquet": path, "parquet str": str(path)}
    expected = SASRecRecommender(**SMALL).fit(X).recommend(X.head(50), k=3)
    for name, source in sources.items():
        model = SASRecRecommender(**SMALL).fit(source)
        pd.testing.assert_frame_equal(model.recommend(source, k=3).head(len(expected)),
                                      model.recommend(X, k=3).head(len(expected)))
        got = model.recommend(X.head(50), k=3)
        pd.testing.assert_frame_equal(got, expected, obj=name)


def test_lazy_polars_input_never_computes_extra_columns(X):
    # the extra column fails when evaluated: only the needed columns may be read
    lazy = pl.from_pandas(X).lazy().with_columns(
        broken=pl.lit("not a number").str.to_integer())
    with pytest.raises(pl.exceptions.ComputeError):
        lazy.collect()
    model = SASRecRecommender(**SMALL).fit(lazy)
    assert model.n_items_ == X.item_id.nunique()


@pytest.mark.parametrize("source", ["polars", "pyarrow", "parquet"])
def test_columnar_input_names_a_missing_column(X, tmp_path, source):
    path = tmp_path / "events.parquet"
    X.to_parquet(path, index=False)
    frame = {"polars": pl.from_pandas(X), "pyarrow": pa.Table.from_pandas(X),
             "parquet": path}[source]
    with pytest.raises(ValueError, match=r"missing column\(s\) \['when'\]; columns present"):
        SASRecRecommender(time_col="when", **SMALL).fit(frame)


def test_a_path_that_is_not_parquet_is_refused(tmp_path):
    with pytest.raises(ValueError, match="only parquet files are read by path"):
        SASRecRecommender(**SMALL).fit(str(tmp_path / "events.csv"))


# --- precision and the device path ----------------------------------------------------------

@pytest.mark.parametrize("make, lowered", [
    (functools.partial(SASRecRecommender, **SMALL), True),
    (functools.partial(SASRecRecommender, loss="sce", **SMALL), True),
    # BPR on propagated rows is element-wise and the sparse product stays float32: nothing
    # in LightGCN's step is lowered, so bf16 changes nothing
    (functools.partial(LightGCNRecommender, n_factors=8, epochs=1, random_state=0), False),
    (functools.partial(CREATERecommender, warmup_epochs=1, graph_batch_size=32,
                       **SMALL_CREATE), True),
], ids=["SASRec", "SASRec-SCE", "LightGCN", "CREATE"])
def test_bf16_autocast_trains_and_serves(X, make, lowered):
    half = make(trainer=Trainer(precision="bf16")).fit(X)
    full = make().fit(X)
    assert np.isfinite(half.loss_curve_).all()
    # autocast was on where it applies: the rounding of the bf16 matmuls shows in the loss
    assert (half.loss_curve_ != full.loss_curve_) == lowered
    np.testing.assert_allclose(half.loss_curve_, full.loss_curve_, rtol=0.05)
    assert all(p.dtype == torch.float32 for p in half.module_.parameters())
    assert len(half.recommend(X.head(30), k=3))


def test_precision_is_validated_by_name(X):
    with pytest.raises(ValueError, match=r"'precision' parameter of Trainer must be a str among"):
        SASRecRecommender(trainer=Trainer(precision="fp16"), **SMALL).fit(X)


class _HostReads(TorchDispatchMode):
    """Records every op that copies a tensor's value to the host (a device sync on CUDA)."""

    def __init__(self):
        super().__init__()
        self.reads = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten._local_scalar_dense.default,
                    torch.ops.aten.nonzero.default):
            self.reads.append(func.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("make", [
    functools.partial(SASRecRecommender, **SMALL),
    functools.partial(SASRecRecommender, loss="sce", **SMALL),
    # the neighbourhood gathering of mini-batch propagation reads sizes back by design; the
    # full path is what "auto" takes on a GPU
    functools.partial(LightGCNRecommender, n_factors=8, epochs=1, random_state=0,
                      propagation="full"),
    functools.partial(CREATERecommender, warmup_epochs=0, graph_batch_size=32,
                      graph_encoder=LightGCNEncoder(n_layers=1, propagation="full"),
                      **SMALL_CREATE),
    # row-sparse gradients and their lazy updates
    functools.partial(LightGCNRecommender, n_factors=8, epochs=1, random_state=0,
                      propagation="full", row_sparse=True),
    functools.partial(UltraGCNRecommender, n_factors=8, epochs=1, random_state=0,
                      row_sparse=True),
    functools.partial(CREATERecommender, warmup_epochs=0, graph_batch_size=32,
                      graph_encoder=LightGCNEncoder(n_layers=1, propagation="full",
                                                    row_sparse=True), **SMALL_CREATE),
    # and SCE: the shared item table's gradient is row-sparse too
    functools.partial(CREATERecommender, warmup_epochs=0, graph_batch_size=32, loss="sce",
                      graph_encoder=LightGCNEncoder(n_layers=1, propagation="full",
                                                    row_sparse=True), **SMALL_CREATE),
], ids=["SASRec", "SASRec-SCE", "LightGCN", "CREATE", "LightGCN-row-sparse",
        "UltraGCN-row-sparse", "CREATE-row-sparse", "CREATE-SCE-row-sparse"])
def test_training_step_reads_no_value_back_to_the_host(X, make, monkeypatch):
    # the optimiser's CPU-only shortcut (a host read there) is off, as on a GPU
    monkeypatch.setattr(optim, "_reads_are_free", lambda tensor: False)
    model = make()
    model._check_params()
    torch.manual_seed(0)
    module, stages = model._build(_encoded(X), np.random.default_rng(0))
    optimiser = model._optimizer(module)(module.parameters())
    batch = next(iter(stages[-1].batches(0)))
    with _HostReads() as mode:
        loss = sum(module(batch).values())
        loss.backward()
        clip_grad_norm(module.parameters(), 1.0)
        if isinstance(optimiser, LazyAdam):
            # torch's Adam reads its step counter, which lives on the host anyway
            optimiser.step()
    assert mode.reads == []


def test_device_bench_tiny_runs_and_reports_every_model(load_benchmark):
    rows = load_benchmark("device_bench").main(["--tiny"])
    assert sorted({row["model"] for row in rows}) == [
        "CREATE", "CREATE-historical", "CREATE-sparse", "LightGCN", "LightGCN-historical",
        "LightGCN-sparse", "SASRec"]
    assert len({row["data"] for row in rows}) == 2
    for row in rows:
        assert row["s/epoch"] > 0 and row["users/s"] > 0


def test_large_fit_reports_each_stage_and_does_not_fit_twice(load_benchmark, tmp_path):
    module = load_benchmark("large_fit")
    out = tmp_path / "fit"
    # a log left by an attempt without checkpoint is not counted
    (tmp_path / "fit.epochs.jsonl").write_text('{"epoch": 9, "stage": "joint"}\n')
    argv = ["--model", "CREATE", "--set", "epochs=2", "warmup_epochs=1", "n_factors=8",
            "--interactions", "2000", "--users", "100", "--items", "200", "--out", str(out)]
    result = module.main(argv)
    assert result["epochs"] == {"warmup": 1, "joint": 2}
    assert result["params"] == {"epochs": 2, "warmup_epochs": 1, "n_factors": 8}
    assert result["peak_mib"] > 0 and result["users_per_s"] > 0
    assert not (tmp_path / "fit.ckpt").exists()
    assert "| joint | 2 |" in (tmp_path / "fit.md").read_text()
    log = (tmp_path / "fit.epochs.jsonl").read_text()
    assert module.main(argv) == result
    assert (tmp_path / "fit.epochs.jsonl").read_text() == log
