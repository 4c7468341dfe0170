"""Mini-batch K-hop propagation equals full propagation: rows, loss, gradients, edge dropout."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skcreate import LightGCNRecommender
from skcreate.training.batches import EdgeBatch
from skcreate.nn import GraphModel, LightGCNEncoder
from skcreate.nn import _graph_kernels, sparse
from skcreate.nn.sparse import block_spmm, change_spmm, drop_edges, dropout_seed, edge_keep, \
    normalized_adjacency, random_walks, row_block, stack_blocks, sum_blocks, unique_codes


def random_graph(seed, n_users=30, n_items=40, density=0.1):
    rng = np.random.default_rng(seed)
    user_items = (rng.random((n_users, n_items)) < density).astype(float)
    user_items[0] = 0  # an isolated user
    return sp.csr_matrix(user_items)


def edge_batch(user_items, seed, size=6, n_negatives=2):
    rng = np.random.default_rng(seed)
    coo = user_items.tocoo()
    rows = rng.choice(coo.nnz, size)
    return EdgeBatch(torch.as_tensor(coo.row[rows], dtype=torch.long),
                     torch.as_tensor(coo.col[rows], dtype=torch.long),
                     torch.as_tensor(rng.integers(0, user_items.shape[1], (size, n_negatives))))


def loss_and_grads(user_items, batch, propagation, seed=0, **params):
    """BPR step loss and layer-0 gradients of one seeded step."""
    torch.manual_seed(0)
    encoder = LightGCNEncoder(n_factors=8, propagation=propagation, **params).build(user_items)
    model = GraphModel(encoder, 1e-2, torch.Generator().manual_seed(seed))
    loss = model(batch)["global"]
    grads = torch.autograd.grad(loss, [encoder.user_embedding.weight,
                                       encoder.item_table.weight])
    return loss, grads


@pytest.mark.parametrize("n_layers", [1, 2, 3])
@pytest.mark.parametrize("edge_dropout", [0.0, 0.4])
@pytest.mark.parametrize("normalize_layers", [False, True])
@pytest.mark.parametrize("propagation", ["subgraph", "auto"])
def test_subgraph_step_equals_full_propagation(n_layers, edge_dropout, normalize_layers,
                                               propagation):
    user_items = random_graph(n_layers)
    batch = edge_batch(user_items, 1)
    params = dict(n_layers=n_layers, edge_dropout=edge_dropout,
                  normalize_layers=normalize_layers)
    full_loss, full_grads = loss_and_grads(user_items, batch, "full", **params)
    loss, grads = loss_and_grads(user_items, batch, propagation, **params)
    torch.testing.assert_close(loss, full_loss)
    for grad, full_grad in zip(grads, full_grads):
        torch.testing.assert_close(grad, full_grad)
    assert full_grads[0].abs().sum() > 0


def test_auto_mixes_full_and_subgraph_layers_exactly(monkeypatch):
    # a tiny budget makes every step propagate its lower layers in full
    monkeypatch.setattr(LightGCNEncoder, "full_share", 1e-3)
    user_items = random_graph(4, density=0.2)
    batch = edge_batch(user_items, 2)
    params = dict(n_layers=3, edge_dropout=0.3)
    full_loss, full_grads = loss_and_grads(user_items, batch, "full", **params)
    loss, grads = loss_and_grads(user_items, batch, "auto", **params)
    torch.testing.assert_close(loss, full_loss)
    torch.testing.assert_close(grads[1], full_grads[1])


def test_edge_dropout_draws_differ_between_steps_and_match_drop_edges():
    user_items = random_graph(5, density=0.3)
    batch = edge_batch(user_items, 3)
    first, _ = loss_and_grads(user_items, batch, "subgraph", seed=0, edge_dropout=0.5)
    second, _ = loss_and_grads(user_items, batch, "subgraph", seed=1, edge_dropout=0.5)
    undropped, _ = loss_and_grads(user_items, batch, "subgraph", seed=0)
    assert not torch.allclose(first, second) and not torch.allclose(first, undropped)
    # a row block with dropout holds exactly the entries drop_edges keeps in those rows
    adjacency = normalized_adjacency(user_items)
    seed = dropout_seed(torch.Generator().manual_seed(7))
    rows = torch.tensor([1, 4, 31, 60])
    block = row_block(adjacency, rows, 0.5, seed)
    expected = drop_edges(adjacency, 0.5, seed=seed).to_dense()[rows]
    got = torch.sparse_csr_tensor(block.indptr, block.cols, block.values,
                                  (len(rows), adjacency.shape[1])).to_dense()
    torch.testing.assert_close(got, expected)


def test_edge_keep_is_symmetric_and_keeps_the_expected_share():
    rows = torch.randint(0, 10_000, (200_000,))
    cols = torch.randint(0, 10_000, (200_000,))
    seed = dropout_seed(torch.Generator().manual_seed(0))
    keep = edge_keep(rows, cols, 0.3, seed)
    assert torch.equal(keep, edge_keep(cols, rows, 0.3, seed))
    assert abs(keep.double().mean().item() - 0.7) < 0.005
    other = edge_keep(rows, cols, 0.3, dropout_seed(torch.Generator().manual_seed(1)))
    # independent draws: about 0.7 * 0.7 of the entries are kept by both
    assert abs((keep & other).double().mean().item() - 0.49) < 0.005


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_users=st.integers(1, 12), n_items=st.integers(1, 12),
       n_layers=st.integers(1, 3), density=st.floats(0.05, 0.9),
       edge_dropout=st.sampled_from([0.0, 0.5]))
def test_subgraph_rows_equal_full_rows_on_random_graphs(seed, n_users, n_items, n_layers,
                                                        density, edge_dropout):
    rng = np.random.default_rng(seed)
    user_items = sp.csr_matrix((rng.random((n_users, n_items)) < density).astype(float))
    encoder = LightGCNEncoder(n_factors=3, n_layers=n_layers, edge_dropout=edge_dropout,
                              propagation="subgraph").build(user_items)
    users = torch.as_tensor(rng.integers(0, n_users, 3))
    items = torch.as_tensor(rng.integers(0, n_items, 4))
    part_users, part_items = encoder.embed(users, items, torch.Generator().manual_seed(seed))
    full_users, full_items = encoder.propagate(torch.Generator().manual_seed(seed))
    torch.testing.assert_close(part_users[users], full_users[users])
    torch.testing.assert_close(part_items[items], full_items[items])


def test_recommendations_equal_between_full_and_subgraph_fits(synthetic):
    params = dict(n_factors=8, n_layers=2, batch_size=256, epochs=2, random_state=0)
    full = LightGCNRecommender(propagation="full", **params).fit(synthetic)
    subgraph = LightGCNRecommender(propagation="subgraph", **params).fit(synthetic)
    np.testing.assert_allclose(subgraph.loss_curve_, full.loss_curve_, rtol=1e-5)
    assert subgraph.recommend(k=10)[["user_id", "item_id"]].equals(
        full.recommend(k=10)[["user_id", "item_id"]])


def test_unknown_propagation_is_rejected():
    with pytest.raises(ValueError, match="'propagation' parameter of LightGCNEncoder must be a str "
                                         "among"):
        LightGCNEncoder(n_factors=2, propagation="sideways").build(random_graph(0))


@pytest.mark.parametrize("n_layers", [1, 2, 3])
@pytest.mark.parametrize("normalize_layers", [False, True])
@pytest.mark.parametrize("fanout", [None, 2])
def test_historical_step_has_full_propagation_rows_after_a_refresh(n_layers, normalize_layers,
                                                                   fanout):
    user_items = random_graph(n_layers, density=0.2)
    batch = edge_batch(user_items, 1)
    params = dict(n_layers=n_layers, normalize_layers=normalize_layers)
    full_loss, full_grads = loss_and_grads(user_items, batch, "full", **params)
    loss, grads = loss_and_grads(user_items, batch, "historical", fanout=fanout, **params)
    # the sampled part is the change since the refresh: none yet
    torch.testing.assert_close(loss, full_loss)
    if n_layers == 1 and fanout is None:
        # one hop is the whole propagation: the gradients are exact too
        for grad, full_grad in zip(grads, full_grads):
            torch.testing.assert_close(grad, full_grad)
    elif n_layers > 1:
        # deeper layers come from the history, without gradient
        assert not torch.allclose(grads[1], full_grads[1])


@pytest.mark.parametrize("n_layers", [2, 3])
@pytest.mark.parametrize("normalize_layers", [False, True])
def test_historical_step_estimates_full_propagation_after_the_rows_moved(n_layers,
                                                                        normalize_layers):
    # layers 1..K are the refresh's plus unbiased estimates of A^k applied to the layer-0 rows'
    # change since: with every neighbour and many walks, close to propagating the new rows
    user_items = random_graph(4, density=0.15)
    torch.manual_seed(0)
    encoder = LightGCNEncoder(n_factors=4, n_layers=n_layers, normalize_layers=normalize_layers,
                              propagation="historical", fanout=1000,
                              walks=20_000).build(user_items)
    encoder.train()
    users, items = torch.arange(30), torch.arange(40)
    encoder.embed(users, items)
    with torch.no_grad():
        encoder.user_embedding.weight.add_(torch.randn(30, 4, generator=torch.Generator()
                                                       .manual_seed(0)))
        encoder.item_table.catalogue.add_(torch.randn(40, 4, generator=torch.Generator()
                                                      .manual_seed(1)))
        part_users, part_items = encoder.embed(users, items, torch.Generator().manual_seed(2))
        full_users, full_items = encoder.propagate()
    # the layers' scale is about 1 here: walks of the wrong length err by 0.3 to 0.9
    torch.testing.assert_close(part_users[users], full_users, atol=0.1, rtol=0)
    torch.testing.assert_close(part_items[items], full_items, atol=0.1, rtol=0)


def test_historical_propagation_refuses_edge_dropout():
    with pytest.raises(ValueError, match="edge_dropout must be 0 with propagation='historical'"):
        LightGCNEncoder(n_factors=4, propagation="historical", edge_dropout=0.1).build(
            random_graph(0))


def _hops(adjacency, nodes, k):
    """Nodes within k hops of ``nodes`` (a dense adjacency)."""
    reached = set(nodes.tolist())
    for _ in range(k):
        reached |= set(adjacency[sorted(reached)].nonzero()[:, 1].tolist())
    return reached


def test_historical_gradients_reach_k_hops_along_walks():
    user_items = random_graph(6, n_users=60, n_items=80, density=0.03)
    batch = edge_batch(user_items, 2, size=2)
    torch.manual_seed(0)
    encoder = LightGCNEncoder(n_factors=8, n_layers=3, propagation="historical",
                              row_sparse=True).build(user_items)
    encoder.train()
    model = GraphModel(encoder, 1e-2, torch.Generator().manual_seed(0))
    model(batch)["global"].backward()
    # item table row r is item r - 1 (row 0 pads sequences), node 60 + r - 1
    adjacency = normalized_adjacency(user_items).to_dense()
    nodes = torch.cat([batch.users, batch.positives + 60,
                       batch.negatives.reshape(-1) + 60]).unique()
    touched = set(encoder.user_embedding.weight.grad.coalesce().indices()[0].tolist()) | \
        {59 + row for row in encoder.item_table.weight.grad.coalesce().indices()[0].tolist()}
    assert touched <= _hops(adjacency, nodes, 3)
    assert touched - _hops(adjacency, nodes, 1)


def test_random_walks_estimate_powers_of_the_adjacency_without_bias():
    user_items = random_graph(7, n_users=40, n_items=50, density=0.08)
    adjacency = normalized_adjacency(user_items)
    dense = adjacency.to_dense().double()
    x = torch.randn(90, 3, generator=torch.Generator().manual_seed(0)).double()
    starts = torch.tensor([0, 1, 2, 3, 45])  # user 0 has no edges
    ends, weights = random_walks(adjacency, starts, 200_000, 3,
                                 torch.Generator().manual_seed(1))
    power = torch.eye(90, dtype=torch.float64)
    for end, weight in zip(ends, weights):
        power = dense @ power
        estimate = (weight.double()[:, None] * x[end]).reshape(len(starts), -1, 3).sum(1)
        torch.testing.assert_close(estimate, (power @ x)[starts], atol=0.01, rtol=0)
    assert (torch.stack(weights)[:, :200_000] == 0).all()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_rows=st.integers(1, 6), n_cols=st.integers(1, 7),
       n_blocks=st.integers(1, 4))
def test_summed_blocks_multiply_as_the_sum_of_their_products(seed, n_rows, n_cols, n_blocks):
    rng = np.random.default_rng(seed)
    # repeated columns within a row (random walks meet) and empty rows included
    blocks, dense = [], np.zeros((n_rows, n_cols))
    for _ in range(n_blocks):
        counts = rng.integers(0, 4, n_rows)
        cols = rng.integers(0, n_cols, counts.sum())
        values = rng.standard_normal(counts.sum())
        np.add.at(dense, (np.repeat(np.arange(n_rows), counts), cols), values)
        blocks.append((torch.as_tensor(np.concatenate([[0], counts.cumsum()])),
                       torch.as_tensor(cols), torch.as_tensor(values, dtype=torch.float32)))
    indptr, cols, values = sum_blocks(blocks)
    assert indptr.tolist() == np.concatenate(
        [[0], sum(block[0].diff().numpy() for block in blocks).cumsum()]).tolist()
    # each row holds every block's entries of that row
    for row in range(n_rows):
        held = sorted(zip(cols[indptr[row]:indptr[row + 1]].tolist(),
                          values[indptr[row]:indptr[row + 1]].tolist()))
        expected = sorted((c, v) for block in blocks for c, v in zip(
            block[1][block[0][row]:block[0][row + 1]].tolist(),
            block[2][block[0][row]:block[0][row + 1]].tolist()))
        assert held == expected
    x = torch.randn(n_cols, 2, dtype=torch.float32, requires_grad=True)
    product = block_spmm(indptr, cols, values, n_cols, x)
    torch.testing.assert_close(product, torch.as_tensor(dense, dtype=torch.float32) @ x)
    product.sum().backward()
    torch.testing.assert_close(x.grad, torch.as_tensor(dense.sum(0), dtype=torch.float32)[:, None]
                               .expand(n_cols, 2))


def _random_block(rng, n_rows, n_cols):
    """CSR arrays of a random block with repeated columns and empty rows, and its dense form."""
    counts = rng.integers(0, 4, n_rows)
    cols = rng.integers(0, n_cols, counts.sum())
    values = rng.standard_normal(counts.sum())
    dense = np.zeros((n_rows, n_cols))
    np.add.at(dense, (np.repeat(np.arange(n_rows), counts), cols), values)
    return (torch.as_tensor(np.concatenate([[0], counts.cumsum()])), torch.as_tensor(cols),
            torch.as_tensor(values, dtype=torch.float32)), dense


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n_rows=st.integers(1, 12), n_cols=st.integers(1, 10),
       n_blocks=st.integers(1, 4))
def test_stacked_blocks_multiply_as_each_block_in_turn(seed, n_rows, n_cols, n_blocks):
    rng = np.random.default_rng(seed)
    blocks, dense = zip(*(_random_block(rng, n_rows, n_cols) for _ in range(n_blocks)))
    indptr, cols, values = stack_blocks(list(blocks))
    assert len(indptr) == n_rows * n_blocks + 1 and int(indptr[-1]) == len(cols)
    x = torch.randn(n_cols, 3)
    torch.testing.assert_close(block_spmm(indptr, cols, values, n_cols, x),
                               torch.as_tensor(np.vstack(dense), dtype=torch.float32) @ x)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n_rows=st.integers(1, 12), n_cols=st.integers(1, 10),
       gradients=st.sampled_from(["both", "product", "rows"]))
def test_change_spmm_equals_its_parts(seed, n_rows, n_cols, gradients):
    rng = np.random.default_rng(seed)
    (indptr, cols, values), _ = _random_block(rng, n_rows, n_cols)
    reference = torch.randn(n_cols + 5, 3)
    read = torch.as_tensor(rng.choice(n_cols + 5, n_cols, replace=False))
    own = torch.as_tensor(rng.choice(n_cols, rng.integers(0, n_cols + 1), replace=False))
    x = torch.randn(n_cols, 3, requires_grad=True)
    upstream = torch.randn(n_rows, 3), torch.randn(len(own), 3)
    product, rows = change_spmm(indptr, cols, values, x, reference, read, own)
    expected_product = block_spmm(indptr, cols, values, n_cols, x - reference[read])
    expected_rows = x[own]
    assert torch.equal(product, expected_product) and torch.equal(rows, expected_rows)
    terms = {"both": (0, 1), "product": (0,), "rows": (1,)}[gradients]
    sum((product, rows)[i].mul(upstream[i]).sum() for i in terms).backward()
    got, x.grad = x.grad, None
    sum((expected_product, expected_rows)[i].mul(upstream[i]).sum() for i in terms).backward()
    # the one-array backward adds the same two terms: the same floats
    assert torch.equal(got, x.grad)
    assert not reference.requires_grad


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), n_rows=st.integers(0, 12), n_cols=st.integers(1, 10),
       dtype=st.sampled_from([torch.float32, torch.float64]), transposed=st.booleans())
def test_compiled_transposed_product_sums_as_scipy(seed, n_rows, n_cols, dtype, transposed):
    # the kernel sums each column in the order of the block's rows, as scipy does: the same
    # floats; torch's path (GPUs, float32 only) agrees to rounding; x may be strided
    rng = np.random.default_rng(seed)
    (indptr, cols, values), dense = _random_block(rng, n_rows, n_cols)
    x = torch.randn(3, n_rows, dtype=dtype).t() if transposed else torch.randn(n_rows, 3,
                                                                              dtype=dtype)
    got = sparse._transposed_product(indptr, cols, values, n_cols, x)
    matrix = sp.csr_matrix((values.numpy(), cols.numpy(), indptr.numpy()), shape=dense.shape)
    expected = torch.from_numpy(matrix.T @ x.numpy())
    assert got.dtype == expected.dtype and torch.equal(got, expected)
    if dtype != torch.float32:
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sparse, "_COMPILED", False)
        torch_path = sparse._transposed_product(indptr, cols, values, n_cols, x)
    torch.testing.assert_close(got, torch_path)


def test_compiled_transposed_product_does_not_depend_on_the_threads(monkeypatch):
    rng = np.random.default_rng(0)
    (indptr, cols, values), _ = _random_block(rng, 3000, 2000)
    x = torch.randn(3000, 5)
    results = []
    for min_per_thread, threads in ((10**9, 1), (100, 2), (100, 3)):
        monkeypatch.setattr(_graph_kernels, "MIN_PER_THREAD", min_per_thread)
        monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
        results.append(sparse._transposed_product(indptr, cols, values, 2000, x))
    assert all(torch.equal(results[0], other) for other in results[1:])


def test_sparse_products_run_on_the_torch_path(monkeypatch):
    # the GPU's path, taken on the CPU: products and gradients as the compiled kernel's
    rng = np.random.default_rng(1)
    (indptr, cols, values), _ = _random_block(rng, 8, 6)
    grads = []
    for compiled in (True, False):
        monkeypatch.setattr(sparse, "_COMPILED", compiled)
        x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
        block_spmm(indptr, cols, values, 6, x).pow(2).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("cols, indptr, message", [
    ([0, 3], [0, 1, 2], "outside"), ([0, -1], [0, 1, 2], "outside"),
    ([0, 1], [0, 2, 1], "decrease"), ([0, 1], [0, 1, 3], "malformed"),
    ([0, 1], [1, 1, 2], "malformed")])
def test_compiled_transposed_product_refuses_a_malformed_block(cols, indptr, message):
    # the kernel reads without bounds checks: a malformed block is an error, not a crash
    with pytest.raises(ValueError, match=message):
        sparse._transposed_product(torch.tensor(indptr), torch.tensor(cols),
                                   torch.ones(len(cols)), 3, torch.ones(2, 4))
    with pytest.raises(ValueError, match="shape"):
        sparse._transposed_product(torch.tensor([0, 1, 2]), torch.tensor([0, 1]),
                                   torch.ones(2), 3, torch.ones(3, 4))


@settings(max_examples=40, deadline=None)
@given(codes=st.lists(st.integers(0, 49), max_size=30), spare=st.sampled_from([0, 1, 500]))
def test_unique_codes_equal_torch_unique(codes, spare):
    # spare codes beyond the largest: small sizes take the mask, large ones the sort
    codes = torch.tensor(codes, dtype=torch.long)
    distinct, inverse = unique_codes(codes, 50 + spare)
    expected, expected_inverse = codes.unique(return_inverse=True)
    assert torch.equal(distinct, expected) and torch.equal(inverse, expected_inverse)


@pytest.mark.parametrize("normalize_layers", [False, True])
def test_historical_history_holds_what_a_step_reads(normalize_layers):
    # the layers' sum (the mean is linear in them) or every layer (normalised before the mean)
    user_items = random_graph(3, density=0.2)
    encoder = LightGCNEncoder(n_factors=4, n_layers=3, propagation="historical",
                              normalize_layers=normalize_layers).build(user_items)
    encoder.train()
    encoder.embed(torch.tensor([1]), torch.tensor([2]))
    with torch.no_grad():
        layers = [encoder.layer0()]
        for _ in range(3):
            layers.append(encoder.adjacency @ layers[-1])
    expected = layers if normalize_layers else [layers[0], sum(layers[1:])]
    assert len(encoder._history) == len(expected)
    for held, layer in zip(encoder._history, expected):
        torch.testing.assert_close(held, layer)


def test_historical_rows_follow_the_weights_between_refreshes():
    # each node has one neighbour: the walks and the sampled hop are exact, so a step's rows
    # are full propagation's at the current weights, not at the refresh's
    user_items = sp.csr_matrix(np.eye(6)[[1, 0, 2, 4, 3, 5]])
    users, items = torch.tensor([0, 3]), torch.tensor([1, 2, 5])
    torch.manual_seed(0)
    encoder = LightGCNEncoder(n_factors=4, n_layers=3, propagation="historical",
                              fanout=2).build(user_items)
    encoder.train()
    encoder.embed(users, items)
    with torch.no_grad():
        encoder.user_embedding.weight.add_(1.0)
        encoder.item_table.weight.mul_(-2.0)
    step = encoder.embed(users, items)
    encoder.eval()
    exact = encoder.propagate()
    torch.testing.assert_close(step[0][users], exact[0][users])
    torch.testing.assert_close(step[1][items], exact[1][items])
    # entering training refreshes the history at the next step
    encoder.train()
    encoder.embed(users, items)
    torch.testing.assert_close(encoder._history[0], encoder.layer0())


@pytest.mark.parametrize("row_sparse", [False, True])
@pytest.mark.parametrize("n_layers", [1, 3])
def test_historical_step_without_neighbour_gradients_reads_the_same_rows(row_sparse, n_layers):
    user_items = random_graph(8, n_users=40, n_items=50, density=0.08)
    users, items = torch.tensor([1, 3, 3, 7]), torch.tensor([0, 5, 9])
    torch.manual_seed(0)
    encoder = LightGCNEncoder(n_factors=4, n_layers=n_layers, propagation="historical",
                              row_sparse=row_sparse, fanout=3).build(user_items)
    encoder.train()
    assert encoder.own_rows_step()
    weights = torch.randn(90, 4, generator=torch.Generator().manual_seed(1))
    results = []
    for neighbour_gradients in (True, False):
        encoder.zero_grad()
        user_rows, item_rows = encoder.embed(users, items, torch.Generator().manual_seed(2),
                                             neighbour_gradients=neighbour_gradients)
        out = torch.cat([user_rows[users.unique()], item_rows[items]])
        (out * weights[:len(out)]).sum().backward()
        grads = [encoder.user_embedding.weight.grad, encoder.item_table.weight.grad]
        results.append((out.detach(), [g.to_dense() if g.is_sparse else g for g in grads]))
    (out, grads), (own_out, own_grads) = results
    torch.testing.assert_close(own_out, out)
    # the mean of K + 1 layers holds a node's own layer-0 row once: its gradient is the
    # upstream one over K + 1, and no other row gets any
    expected_users = torch.zeros_like(own_grads[0])
    expected_users[users.unique()] = weights[:len(users.unique())] / (n_layers + 1)
    expected_items = torch.zeros_like(own_grads[1])
    expected_items[items + 1] = weights[len(users.unique()):len(out)] / (n_layers + 1)
    torch.testing.assert_close(own_grads[0], expected_users)
    torch.testing.assert_close(own_grads[1], expected_items)
    # the full step's gradients also reach neighbours
    assert (grads[1].abs().sum(1) > 0).sum() > len(items)


def test_neighbour_gradients_false_needs_a_historical_training_step():
    user_items = random_graph(9)
    encoder = LightGCNEncoder(n_factors=4, propagation="subgraph").build(user_items)
    assert not encoder.own_rows_step()
    with pytest.raises(ValueError, match="neighbour_gradients=False needs a training step "
                                         "under historical propagation"):
        encoder.embed(torch.tensor([1]), torch.tensor([2]), neighbour_gradients=False)
    historical = LightGCNEncoder(n_factors=4, propagation="historical").build(user_items)
    historical.eval()
    with pytest.raises(ValueError, match="training=False"):
        historical.embed(torch.tensor([1]), torch.tensor([2]), neighbour_gradients=False)


def test_an_encoder_without_the_option_refuses_it():
    from skcreate.nn import UltraGCNEncoder
    encoder = UltraGCNEncoder(n_factors=4).build(random_graph(10))
    assert not encoder.own_rows_step()
    with pytest.raises(ValueError, match="UltraGCNEncoder cannot keep gradients"):
        encoder.embed(torch.tensor([1]), torch.tensor([2]), neighbour_gradients=False)
