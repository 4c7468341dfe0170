"""row_sparse graph encoders: the same loss and gradients as the dense path, row-wise updates."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

import skcreate
import skcreate.nn.lightgcn as lightgcn
from skcreate.data.datasets import make_interactions
from skcreate.nn import GraphModel, LightGCNEncoder, UltraGCNEncoder
from skcreate.nn.item_table import ItemTable
from skcreate.nn.optim import LazyAdam, _coalesced, clip_grad_norm
from skcreate.training.batches import EdgeBatch
from skcreate.nn.sparse import distinct_rows, normalized_adjacency, row_block

rng = np.random.default_rng(0)
# a sparse graph of 300 users and 200 items: a batch's neighbourhood is a small part of it
GRAPH = sp.random(300, 200, density=0.01, format="csr", random_state=0, dtype=np.float32)
GRAPH.data[:] = 1.0


def _encoders(make, shared_table=False):
    """The same encoder built twice, dense and row-sparse, with the same weights."""
    built = []
    for row_sparse in (False, True):
        torch.manual_seed(0)
        table = ItemTable(200, 8) if shared_table else None
        built.append(make(row_sparse).build(GRAPH, table))
    return built


def _batch(n_negatives):
    users, items = GRAPH[:40].nonzero()
    return EdgeBatch(torch.as_tensor(users, dtype=torch.int64),
                     torch.as_tensor(items, dtype=torch.int64),
                     torch.as_tensor(rng.integers(0, 200, (len(users), n_negatives))))


def _gradients(module):
    return {name: (p.grad.to_dense() if p.grad.is_sparse else p.grad)
            for name, p in module.named_parameters() if p.grad is not None}


MAKERS = {
    "lightgcn-subgraph": lambda sparse: LightGCNEncoder(n_factors=8, n_layers=2,
                                                        propagation="subgraph",
                                                        row_sparse=sparse),
    "lightgcn-historical": lambda sparse: LightGCNEncoder(n_factors=8, n_layers=3,
                                                          propagation="historical",
                                                          row_sparse=sparse),
    # one product of the stacked blocks, a layer each
    "lightgcn-historical-normalized": lambda sparse: LightGCNEncoder(
        n_factors=8, n_layers=3, propagation="historical", normalize_layers=True,
        row_sparse=sparse),
    "lightgcn-full": lambda sparse: LightGCNEncoder(n_factors=8, n_layers=1, propagation="full",
                                                    row_sparse=sparse),
    "ultragcn": lambda sparse: UltraGCNEncoder(n_factors=8, n_negatives=3, n_neighbours=2,
                                               row_sparse=sparse),
}


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("shared_table", [False, True])
def test_sparse_path_has_the_dense_loss_and_gradients(name, shared_table):
    dense, sparse = _encoders(MAKERS[name], shared_table)
    batch = _batch(dense.n_negatives)
    losses = []
    for encoder in (dense, sparse):
        # the same draws for both (historical propagation samples random walks)
        model = GraphModel(encoder, regularization=0.1, generator=torch.Generator().manual_seed(0))
        loss = model(batch)["global"]
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0])
    expected, got = _gradients(dense), _gradients(sparse)
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-7)
    if name == "lightgcn-full":
        return  # a whole-table read: dense gradients, as documented
    # the user rows' gradient is row-sparse: it holds the rows the step read, not the table
    assert sparse.user_embedding.weight.grad.is_sparse
    assert len(sparse.user_embedding.weight.grad.coalesce().indices()[0]) < GRAPH.shape[0]
    if name.startswith("lightgcn"):
        # one read of each table a step, penalty included: its rows sorted and distinct, so
        # the optimiser takes the gradient without a sort
        for table in (sparse.user_embedding.weight, sparse.item_table.weight):
            rows = table.grad._indices()[0]
            assert bool((rows[1:] > rows[:-1]).all())
            assert _coalesced(table.grad).is_coalesced()


@pytest.mark.parametrize("name", ["lightgcn-subgraph", "lightgcn-historical", "lightgcn-full"])
@pytest.mark.parametrize("row_sparse", [False, True])
def test_step_penalty_is_the_penalty(name, row_sparse):
    encoder = MAKERS[name](row_sparse).build(GRAPH)
    batch = _batch(2)
    terms = []
    for read_embeddings in (True, False):
        encoder.zero_grad()
        embeddings = encoder.embed(batch.users, torch.cat([batch.positives,
                                                           batch.negatives.reshape(-1)]),
                                   torch.Generator().manual_seed(0))
        args = batch.users, batch.positives, batch.negatives
        penalty = encoder.step_penalty(embeddings, *args) if read_embeddings \
            else encoder.penalty(*args)
        penalty.backward()
        terms.append((penalty.detach(), _gradients(encoder)))
    (got, got_grads), (expected, expected_grads) = terms
    torch.testing.assert_close(got, expected)
    assert got_grads.keys() == expected_grads.keys()
    for key in expected_grads:
        torch.testing.assert_close(got_grads[key], expected_grads[key])


def test_a_subclass_penalty_is_the_step_penalty():
    class UsersOnly(LightGCNEncoder):
        def penalty(self, users, positives, negatives):
            return self.user_embedding(users).pow(2).sum()

    encoder = UsersOnly(n_factors=8, n_layers=2, propagation="historical",
                        row_sparse=True).build(GRAPH)
    batch = _batch(2)
    embeddings = encoder.embed(batch.users, batch.positives, torch.Generator().manual_seed(0))
    assert embeddings[0].layer0 is not None
    got = encoder.step_penalty(embeddings, batch.users, batch.positives, batch.negatives)
    expected = encoder.user_embedding.weight[batch.users].pow(2).sum()
    torch.testing.assert_close(got, expected)


def test_distinct_rows_give_the_embedding_gradient_coalesced():
    weight = torch.randn(50, 4, requires_grad=True)
    rows = torch.tensor([1, 4, 5, 20, 49])
    upstream = torch.randn(5, 4)
    (distinct_rows(weight, rows) * upstream).sum().backward()
    got = weight.grad
    weight.grad = None
    (torch.nn.functional.embedding(rows, weight, sparse=True) * upstream).sum().backward()
    assert torch.equal(got.to_dense(), weight.grad.to_dense())
    # autograd drops the coalesced flag; the optimiser's check restores it without a sort
    coalesced = _coalesced(got)
    assert coalesced.is_coalesced()
    assert torch.equal(coalesced.indices(), rows[None])
    assert coalesced.values().data_ptr() == got._values().data_ptr()


def test_distinct_rows_of_several_tables_are_concatenated_with_a_gradient_each():
    users, items = torch.randn(6, 4, requires_grad=True), torch.randn(9, 4, requires_grad=True)
    user_rows, item_rows = torch.tensor([0, 3, 5]), torch.tensor([2, 8])
    upstream = torch.randn(5, 4)
    got = distinct_rows((users, items), (user_rows, item_rows))
    assert torch.equal(got, torch.cat([users[user_rows], items[item_rows]]))
    (got * upstream).sum().backward()
    for weight, rows, part in ((users, user_rows, upstream[:3]), (items, item_rows, upstream[3:])):
        assert weight.grad.is_sparse
        assert torch.equal(_coalesced(weight.grad).indices(), rows[None])
        assert torch.equal(weight.grad.to_dense()[rows], part)
    with pytest.raises(ValueError, match="one rows tensor per table"):
        distinct_rows((users, items), (user_rows,))


def test_distinct_rows_gradient_can_be_clipped_in_place():
    # a sum's upstream gradient is one expanded row (autograd copies it into the gradient)
    weight = torch.ones(10, 3, requires_grad=True)
    (10 * distinct_rows(weight, torch.tensor([2, 5]))).sum().backward()
    clip_grad_norm([weight], 1.0)
    torch.testing.assert_close(weight.grad.to_dense().norm(), torch.tensor(1.0))
    assert torch.equal(weight.grad.coalesce().indices(), torch.tensor([[2, 5]]))


@pytest.mark.parametrize("indices", [[3, 1, 7], [1, 3, 3], [2]], ids=["unsorted", "repeated",
                                                                        "one"])
def test_coalesced_equals_coalesce(indices):
    values = torch.randn(len(indices), 4)
    grad = torch.sparse_coo_tensor(torch.tensor([indices]), values, (10, 4))
    got, expected = _coalesced(grad), grad.coalesce()
    assert got.is_coalesced()
    assert torch.equal(got.indices(), expected.indices())
    assert torch.equal(got.values(), expected.values())


def test_lazy_updates_leave_unread_rows_alone():
    _, sparse = _encoders(MAKERS["lightgcn-subgraph"])
    model = GraphModel(sparse, regularization=0.1)
    optimizer = LazyAdam(model.parameters(), lr=0.1)
    before = sparse.user_embedding.weight.detach().clone()
    read = []
    for _ in range(2):
        optimizer.zero_grad()
        model(_batch(1))["global"].backward()
        read.append(sparse.user_embedding.weight.grad.coalesce().indices()[0])
        optimizer.step()
    read = torch.cat(read).unique()
    unread = np.setdiff1d(np.arange(300), read.numpy())
    assert len(unread) > 0
    assert torch.equal(sparse.user_embedding.weight[unread], before[unread])
    assert not torch.equal(sparse.user_embedding.weight[read], before[read])


X = make_interactions(n_users=200, n_items=80, random_state=0)


@pytest.mark.parametrize("est", [
    skcreate.LightGCNRecommender(n_factors=8, n_layers=1, batch_size=64, epochs=2,
                                 random_state=0, row_sparse=True),
    skcreate.UltraGCNRecommender(n_factors=8, n_negatives=2, batch_size=64, epochs=2,
                                 random_state=0, row_sparse=True),
    skcreate.CREATERecommender(n_factors=8, epochs=1, warmup_epochs=1, graph_batch_size=64,
                               random_state=0).set_params(graph_encoder__row_sparse=True),
    skcreate.LightGCNRecommender(n_factors=8, n_layers=3, batch_size=64, epochs=2,
                                 random_state=0, row_sparse=True, propagation="historical",
                                 fanout=3),
], ids=["lightgcn", "ultragcn", "create", "lightgcn-historical"])
def test_estimators_train_row_sparse(est):
    fitted = clone(est).fit(X)
    again = clone(est).fit(X)
    assert np.isfinite(fitted.loss_curve_).all()
    np.testing.assert_array_equal(fitted.loss_curve_, again.loss_curve_)
    assert fitted.recommend(k=5).equals(again.recommend(k=5))
    encoder = getattr(fitted.module_, "encoder", None) or fitted.module_.graph.encoder
    assert encoder.user_embedding.sparse


def _loss_and_gradients(encoder, batch, generator):
    encoder.zero_grad()
    loss = GraphModel(encoder, regularization=0.1, generator=generator)(batch)["global"]
    loss.backward()
    return loss.detach(), _gradients(encoder)


def test_fanout_covering_every_neighbour_is_exact():
    batch = _batch(1)
    max_degree = int(max(np.diff(GRAPH.indptr).max(), np.diff(GRAPH.tocsc().indptr).max()))
    results = []
    for fanout in (None, max_degree):
        torch.manual_seed(0)
        encoder = LightGCNEncoder(n_factors=8, n_layers=2, propagation="subgraph",
                                  fanout=fanout).build(GRAPH)
        results.append(_loss_and_gradients(encoder, batch, torch.Generator().manual_seed(1)))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=0, atol=0)
    for key, value in results[0][1].items():
        torch.testing.assert_close(results[1][1][key], value, rtol=0, atol=0)


def test_sampled_neighbourhoods_are_unbiased_and_seeded():
    """Each step samples (the same for the same generator state); the mean of the sampled
    step losses approaches the exact one."""
    batch = _batch(1)
    torch.manual_seed(0)
    exact_encoder = LightGCNEncoder(n_factors=8, n_layers=1, propagation="subgraph").build(GRAPH)
    exact = _loss_and_gradients(exact_encoder, batch, None)[0]
    torch.manual_seed(0)
    encoder = LightGCNEncoder(n_factors=8, n_layers=1, propagation="subgraph",
                              fanout=1).build(GRAPH)
    generator = torch.Generator().manual_seed(1)
    losses = torch.stack([_loss_and_gradients(encoder, batch, generator)[0]
                          for _ in range(200)])
    assert len(losses.unique()) > 1
    assert abs(float(losses.mean() - exact)) < 0.01 * abs(float(exact))
    again = _loss_and_gradients(encoder, batch, torch.Generator().manual_seed(1))[0]
    assert torch.equal(again, losses[0])
    # serving propagates exactly
    encoder.eval()
    torch.testing.assert_close(encoder.propagate()[0], exact_encoder.propagate()[0])


def test_sampled_rows_are_uniform_subsets_scaled_to_the_degree():
    # rows of degree 5 and 2 (fanout 2 keeps the second whole), read without the others
    user_items = sp.csr_matrix(np.array([[1, 1, 1, 1, 1], [0, 1, 0, 1, 0]]))
    adjacency = normalized_adjacency(user_items)
    dense = adjacency.to_dense()
    generator = torch.Generator().manual_seed(0)
    counts = {}
    for _ in range(600):
        block = row_block(adjacency, torch.tensor([0, 1]), fanout=2, generator=generator)
        assert block.indptr.tolist() == [0, 2, 4] and block.cols[2:].tolist() == [3, 5]
        first = tuple(block.cols[:2].tolist())
        counts[first] = counts.get(first, 0) + 1
        torch.testing.assert_close(block.values, torch.cat([dense[0, block.cols[:2]] * 2.5,
                                                            dense[1, [3, 5]]]))
    # every pair of the 5 neighbours (nodes 2..6), each about 60 times, in order
    assert sorted(counts) == [(a, b) for a in range(2, 7) for b in range(a + 1, 7)]
    assert all(35 < n < 85 for n in counts.values())


def test_walks_set_the_random_walks_of_a_historical_step(monkeypatch):
    original, seen = lightgcn.random_walks, []

    def recorded(adjacency, starts, n_walks, *args, **kwargs):
        seen.append(n_walks)
        return original(adjacency, starts, n_walks, *args, **kwargs)

    monkeypatch.setattr(lightgcn, "random_walks", recorded)
    for params, expected in [({}, 10), ({"fanout": 4}, 4), ({"fanout": 4, "walks": 2}, 2),
                             ({"walks": 3}, 3)]:
        encoder = LightGCNEncoder(n_factors=8, propagation="historical", **params).build(GRAPH)
        users, items = encoder.train().embed(torch.tensor([0, 1]), torch.tensor([0, 5]))
        assert seen.pop() == expected
        assert users.rows.shape[-1] == 8
    with pytest.raises(ValueError, match="'walks' parameter"):
        LightGCNEncoder(walks=0).build(GRAPH)


# --- "auto": exact on small graphs, row-sparse and one sampled hop on large ones -------------

def test_auto_follows_the_graph_size():
    small = LightGCNEncoder(n_factors=8).build(GRAPH)
    assert GRAPH.nnz <= small.large_graph
    assert not small._row_sparse and not small.user_embedding.sparse
    assert small._step_propagation() == ("auto", None)
    large = LightGCNEncoder(n_factors=8)
    large.large_graph = GRAPH.nnz - 1
    large.build(GRAPH)
    assert large._row_sparse and large.user_embedding.sparse
    assert large._step_propagation() == ("historical", LightGCNEncoder.default_walks)
    # what is given stays: a fanout, row_sparse=False, a propagation, edge dropout
    for params, expected in [({"fanout": 3}, ("historical", 3)),
                             ({"propagation": "subgraph"}, ("subgraph", None)),
                             ({"edge_dropout": 0.1}, ("auto", None))]:
        encoder = LightGCNEncoder(n_factors=8, **params)
        encoder.large_graph = 0
        assert encoder.build(GRAPH)._step_propagation() == expected
    dense = LightGCNEncoder(n_factors=8, row_sparse=False)
    dense.large_graph = 0
    assert not dense.build(GRAPH)._row_sparse
    ultra = UltraGCNEncoder(n_factors=8)
    ultra.large_graph = 0
    assert ultra.build(GRAPH)._row_sparse
    with pytest.raises(ValueError, match="row_sparse"):
        LightGCNEncoder(n_factors=8, row_sparse="yes").build(GRAPH)


def test_auto_keeps_dense_gradients_off_the_cpu():
    # a large graph moved off the CPU ("meta" stands in for a GPU): whole-table updates, as
    # LightGCN's "auto" propagates in full there; a given row_sparse=True stays
    for row_sparse, expected in [("auto", False), (True, True)]:
        encoder = UltraGCNEncoder(n_factors=8, row_sparse=row_sparse)
        encoder.large_graph = 0
        encoder.build(GRAPH)
        assert encoder._row_sparse and encoder.user_embedding.sparse
        encoder.to("meta")
        assert encoder._row_sparse == expected
        assert encoder.user_embedding.sparse == expected == encoder.item_table.sparse


@pytest.mark.parametrize("auto, explicit", [
    (skcreate.LightGCNRecommender(n_factors=8, n_layers=2, batch_size=64, epochs=2,
                                  random_state=0),
     {"propagation": "historical", "row_sparse": True, "fanout": 10}),
    (skcreate.UltraGCNRecommender(n_factors=8, n_negatives=2, batch_size=64, epochs=2,
                                  random_state=0), {"row_sparse": True}),
    (skcreate.CREATERecommender(n_factors=8, epochs=1, warmup_epochs=1, graph_batch_size=64,
                                loss="sce", random_state=0),
     {"graph_encoder": LightGCNEncoder(n_layers=1, propagation="historical", row_sparse=True,
                                       fanout=10)}),
], ids=["lightgcn", "ultragcn", "create-sce"])
def test_auto_on_a_large_graph_trains_the_scalable_mode(auto, explicit, monkeypatch):
    small = clone(auto).fit(X)
    assert isinstance(small._optimizer(small.module_)([torch.zeros(1)]), torch.optim.Adam)
    # X's graph counts as large: the defaults fit exactly as the scalable options given
    monkeypatch.setattr(skcreate.nn.GraphEncoder, "large_graph", 10)
    fitted = clone(auto).fit(X)
    given = clone(auto).set_params(**explicit).fit(X)
    np.testing.assert_array_equal(fitted.loss_curve_, given.loss_curve_)
    assert fitted.recommend(k=5).equals(given.recommend(k=5))
    assert isinstance(fitted._optimizer(fitted.module_)([torch.zeros(1)]), LazyAdam)
    assert not np.array_equal(fitted.loss_curve_, small.loss_curve_)
    if isinstance(auto, skcreate.CREATERecommender):
        assert fitted.module_.sequence.item_table.sparse  # SCE and the graph read rows


@pytest.mark.parametrize("grows", [True, False], ids=["dense-to-sparse", "sparse-to-dense"])
def test_partial_fit_across_the_threshold_carries_the_optimiser_state(grows, monkeypatch):
    cut = X.timestamp.quantile(0.8)
    old, new = X[X.timestamp <= cut], X[X.timestamp > cut]
    encoder = skcreate.nn.GraphEncoder
    monkeypatch.setattr(encoder, "large_graph", 10**9 if grows else 10)
    est = skcreate.LightGCNRecommender(n_factors=8, n_layers=2, batch_size=64, epochs=2,
                                       random_state=0).fit(old)
    steps = [float(entry["step"]) for entry in est.optimizer_state_["state"].values()]
    # "auto" is decided again for the grown graph, as a refit would
    monkeypatch.setattr(encoder, "large_graph", 10 if grows else 10**9)
    est.partial_fit(new, epochs=1)
    encoder = est.module_.encoder
    assert encoder._row_sparse == grows
    after = [float(entry["step"]) for entry in est.optimizer_state_["state"].values()]
    assert all(b > a for a, b in zip(steps, after))
    assert np.isfinite(est.loss_curve_).all() and len(est.recommend(k=5))
