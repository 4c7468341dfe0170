"""The torch networks and losses against direct references."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from skcreate.nn import (BERT4RecEncoder, LightGCNEncoder, SASRecEncoder, UltraGCNEncoder,
                         barlow_twins_loss, bpr_loss, full_cross_entropy, info_nce_loss,
                         item_neighbours, normalized_adjacency, scalable_cross_entropy)


def encoder(norm_first=True, causal=True, max_len=6, seed=0):
    torch.manual_seed(seed)
    kind = SASRecEncoder if causal else BERT4RecEncoder
    return kind(n_blocks=2, n_heads=2, max_len=max_len, dropout=0.0,
                norm_first=norm_first).build(n_items=20, n_factors=8).eval()


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("causal", [True, False])
def test_padded_sequence_scores_like_unpadded(norm_first, causal):
    # also shows positions count back from the most recent item: padding shifts the start
    enc = encoder(norm_first, causal)
    items = torch.tensor([[5, 3, 9]])
    padded = torch.tensor([[0, 0, 0, 5, 3, 9]])
    torch.testing.assert_close(enc(padded)[:, 3:], enc(items), atol=1e-5, rtol=1e-5)
    assert torch.isfinite(enc(padded)).all()


def test_causal_mask_hides_later_items():
    enc = encoder()
    a = enc(torch.tensor([[0, 4, 7, 2, 11, 3]]))
    b = enc(torch.tensor([[0, 4, 7, 2, 19, 8]]))
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_bidirectional_sees_later_items():
    enc = encoder(causal=False)
    a = enc(torch.tensor([[4, 7, 2, 11]]))
    b = enc(torch.tensor([[4, 7, 2, 19]]))
    assert not torch.allclose(a[:, 0], b[:, 0])


def test_full_cross_entropy_matches_naive():
    torch.manual_seed(0)
    hidden = torch.randn(700, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    targets = torch.randint(0, 50, (700,))
    ours = full_cross_entropy(hidden, targets, weight, block_size=128)
    grads = torch.autograd.grad(ours, (hidden, weight))
    naive = F.cross_entropy(hidden @ weight.T, targets)
    naive_grads = torch.autograd.grad(naive, (hidden, weight))
    torch.testing.assert_close(ours, naive)
    for g, n in zip(grads, naive_grads):
        torch.testing.assert_close(g, n, atol=1e-6, rtol=1e-5)


def test_sce_equals_full_ce_when_buckets_cover_everything():
    torch.manual_seed(0)
    hidden = torch.randn(12, 8)
    weight = torch.randn(30, 8)
    targets = torch.randint(0, 30, (12,))
    sce = scalable_cross_entropy(hidden, targets, weight, n_buckets=3, bucket_size_x=12,
                                 bucket_size_y=30)
    torch.testing.assert_close(sce, F.cross_entropy(hidden @ weight.T, targets))


def test_sce_converges_on_tiny_problem():
    torch.manual_seed(0)
    n_items, width = 200, 16
    contexts = torch.randn(64, width)
    targets = torch.randint(0, n_items, (64,))
    proj = torch.nn.Linear(width, width)
    weight = torch.nn.Parameter(torch.randn(n_items, width) * 0.1)
    opt = torch.optim.Adam([*proj.parameters(), weight], lr=0.05)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        loss = scalable_cross_entropy(proj(contexts), targets, weight, bucket_size_y=32,
                                      generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    accuracy = ((proj(contexts) @ weight.T).argmax(1) == targets).float().mean()
    assert accuracy > 0.9


def dense_lightgcn(user_items, layer0, n_layers, normalize=False):
    n_users, n_items = user_items.shape
    a = np.zeros((n_users + n_items,) * 2)
    a[:n_users, n_users:] = user_items
    a[n_users:, :n_users] = user_items.T
    d = a.sum(1)
    inv = np.where(d > 0, d, 1) ** -0.5 * (d > 0)
    norm = inv[:, None] * a * inv[None, :]
    layers, layer = [layer0], layer0
    for _ in range(n_layers):
        layer = norm @ layer
        if normalize:
            layers.append(layer / np.maximum(np.linalg.norm(layer, axis=1, keepdims=True), 1e-12))
        else:
            layers.append(layer)
    return np.mean(layers, axis=0)


@pytest.mark.parametrize("normalize", [False, True])
def test_lightgcn_propagation_matches_dense_reference(normalize):
    rng = np.random.default_rng(0)
    user_items = (rng.random((7, 9)) < 0.3).astype(float)
    user_items[0] = 0  # an isolated user
    enc = LightGCNEncoder(n_factors=4, n_layers=3, normalize_layers=normalize)
    users, items = enc.build(sp.csr_matrix(user_items)).propagate()
    expected = dense_lightgcn(user_items, enc.layer0().detach().double().numpy(), 3, normalize)
    np.testing.assert_allclose(torch.cat([users, items]).detach().numpy(), expected, atol=1e-5)


def test_edge_dropout_keeps_symmetry_and_rate():
    from skcreate.nn.sparse import drop_edges

    rng = np.random.default_rng(0)
    adj = normalized_adjacency(sp.csr_matrix((rng.random((60, 80)) < 0.3).astype(float)))
    dropped = drop_edges(adj, 0.3, torch.Generator().manual_seed(0)).to_dense()
    torch.testing.assert_close(dropped, dropped.T)
    kept = (dropped != 0).sum() / (adj.to_dense() != 0).sum()
    assert abs(float(kept) - 0.7) < 0.03
    nonzero = dropped != 0
    torch.testing.assert_close(dropped[nonzero], adj.to_dense()[nonzero] / 0.7)


def test_symmetric_spmm_gradient_matches_dense():
    from skcreate.nn.sparse import symmetric_spmm

    rng = np.random.default_rng(1)
    adj = normalized_adjacency(sp.csr_matrix((rng.random((5, 7)) < 0.5).astype(float)))
    x = torch.randn(12, 3, requires_grad=True)
    weights = torch.randn(12, 3)
    (grad,) = torch.autograd.grad((symmetric_spmm(adj, x) * weights).sum(), x)
    (expected,) = torch.autograd.grad((adj.to_dense() @ x * weights).sum(), x)
    torch.testing.assert_close(grad, expected)


def test_lightgcn_edge_dropout_only_in_training():
    user_items = sp.csr_matrix(np.ones((3, 4)))
    enc = LightGCNEncoder(4, 2, edge_dropout=0.5).build(user_items)
    gen = torch.Generator().manual_seed(0)
    a = enc.propagate(gen)[0]
    b = enc.propagate(gen)[0]
    assert not torch.allclose(a, b)
    enc.eval()
    torch.testing.assert_close(enc.propagate()[0], enc.propagate()[0])


def test_lightgcn_edge_dropout_is_drop_edges_with_the_step_seed():
    from skcreate.nn.sparse import drop_edges, dropout_seed

    rng = np.random.default_rng(2)
    enc = LightGCNEncoder(4, 1, edge_dropout=0.4).build(
        sp.csr_matrix((rng.random((6, 9)) < 0.5).astype(float)))
    layer = enc.layer0()
    for seed in (0, 1):
        users = enc.propagate(torch.Generator().manual_seed(seed))[0]
        dropped = drop_edges(enc.adjacency, 0.4,
                             seed=dropout_seed(torch.Generator().manual_seed(seed)))
        torch.testing.assert_close(users, ((layer + dropped @ layer) / 2)[:6])


def test_shared_item_table_is_one_tensor():
    seq = SASRecEncoder(n_blocks=1, max_len=3).build(n_items=5, n_factors=4)
    graph = LightGCNEncoder(n_layers=1).build(sp.csr_matrix(np.ones((2, 5))), seq.item_table)
    assert graph.item_table.weight is seq.item_table.weight


def test_item_neighbours_weights_by_formula():
    a = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=float)
    neighbours, weights = item_neighbours(sp.csr_matrix(a), n_neighbours=2)
    g = a.T @ a
    row = g.sum(1)
    expected = {(i, j): g[i, j] / (row[i] - g[i, i]) * np.sqrt(row[i] / row[j])
                for i in range(3) for j in range(3) if i != j and g[i, j] > 0}
    for i in range(3):
        for j, w in zip(neighbours[i], weights[i]):
            if w > 0:
                assert w == pytest.approx(expected[(i, j)])
    # item 0 co-occurs with 1 (twice) and 2 (once): the stronger neighbour first
    assert neighbours[0, 0] == 1


def _reference_neighbours(a, k):
    """Top-k of the dense co-occurrence weights, by decreasing weight then item code."""
    a = (np.asarray(a) != 0).astype(np.float64)
    g = a.T @ a
    row = g.sum(1)
    n_items = a.shape[1]
    neighbours = np.zeros((n_items, k), dtype=np.int64)
    weights = np.zeros((n_items, k), dtype=np.float32)
    for i in range(n_items):
        cols = [j for j in range(n_items) if j != i and g[i, j] > 0]
        w = {j: g[i, j] / np.maximum(row[i] - g[i, i], 1e-12) * np.sqrt(row[i] / row[j])
             for j in cols}
        for slot, j in enumerate(sorted(cols, key=lambda j: (-w[j], j))[:k]):
            neighbours[i, slot], weights[i, slot] = j, w[j]
    return neighbours, weights


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), n_users=st.integers(1, 9), n_items=st.integers(1, 9),
       k=st.integers(1, 5), density=st.floats(0.1, 0.9))
def test_item_neighbours_equal_the_dense_reference(seed, n_users, n_items, k, density):
    # small integer co-occurrences: many ties, which go to the smaller item
    a = (np.random.default_rng(seed).random((n_users, n_items)) < density).astype(float)
    neighbours, weights = item_neighbours(sp.csr_matrix(a), n_neighbours=k)
    expected_neighbours, expected_weights = _reference_neighbours(a, k)
    np.testing.assert_array_equal(neighbours, expected_neighbours)
    np.testing.assert_array_equal(weights, expected_weights)


def test_item_neighbours_break_ties_to_the_smaller_item():
    # item 2 co-occurs once with each of items 0, 1, 3, 4 of equal degrees
    a = np.array([[1, 0, 1, 0, 0], [0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 1, 0, 1]])
    neighbours, weights = item_neighbours(sp.csr_matrix(a), n_neighbours=3)
    assert neighbours[2].tolist() == [0, 1, 3]
    assert len(set(weights[2].tolist())) == 1
    # item 0's only neighbour, then empty slots
    assert neighbours[0].tolist() == [2, 0, 0] and weights[0, 1:].tolist() == [0, 0]


def test_item_neighbours_read_the_nonzero_pattern_and_leave_the_input():
    a = sp.csr_matrix((np.array([2.0, 0.0, 1.0, 1.0, 1.0, -1.0]), np.array([0, 1, 0, 0, 1, 2]),
                       np.array([0, 3, 6])), shape=(2, 3))
    before = [a.data.copy(), a.indices.copy(), a.indptr.copy()]
    # user 0: item 0 (stored twice, 2 and 1) and an explicit zero at item 1; user 1: items
    # 0, 1 and 2 (a negative entry is an entry)
    neighbours, weights = item_neighbours(a, n_neighbours=2)
    expected = _reference_neighbours([[1, 0, 0], [1, 1, 1]], 2)
    np.testing.assert_array_equal(neighbours, expected[0])
    np.testing.assert_array_equal(weights, expected[1])
    for array, kept in zip([a.data, a.indices, a.indptr], before):
        np.testing.assert_array_equal(array, kept)
    with pytest.raises(ValueError, match="n_neighbours must be an int >= 1, got 0"):
        item_neighbours(a, n_neighbours=0)


def test_item_neighbours_do_not_depend_on_the_threads(monkeypatch):
    from skcreate.nn import _cooccurrence
    a = sp.random(60, 40, density=0.2, random_state=0, format="csr")
    one = item_neighbours(a, n_neighbours=4)
    monkeypatch.setattr(_cooccurrence, "MIN_PER_THREAD", 1)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    for got, expected in zip(item_neighbours(a, n_neighbours=4), one):
        np.testing.assert_array_equal(got, expected)


def test_ultragcn_beta_formula():
    # user degrees (2, 3), item degrees (2, 2, 1)
    enc = UltraGCNEncoder(n_factors=4).build(sp.csr_matrix([[1, 1, 0], [1, 1, 1]]))
    beta = enc.beta(torch.tensor([1]), torch.tensor([2]))
    assert float(beta) == pytest.approx(1 / 3 * np.sqrt(4 / 2))


def test_bpr_loss_value():
    u = torch.tensor([[1.0, 0.0]])
    assert float(bpr_loss(u, torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]]))) == \
        pytest.approx(-np.log(1 / (1 + np.exp(-2.0))))


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 12), st.integers(2, 6), st.floats(0.0, 0.1))
def test_barlow_twins_matches_direct_formula(batch, width, lam):
    gen = torch.Generator().manual_seed(batch * 7 + width)
    a, b = torch.randn(batch, width, generator=gen), torch.randn(batch, width, generator=gen)
    za = (a - a.mean(0)) / torch.sqrt(a.var(0, unbiased=False) + 1e-5)
    zb = (b - b.mean(0)) / torch.sqrt(b.var(0, unbiased=False) + 1e-5)
    c = za.numpy().T @ zb.numpy() / batch
    expected = sum((1 - c[i, i]) ** 2 for i in range(width)) + lam * sum(
        c[i, j] ** 2 for i in range(width) for j in range(width) if i != j)
    assert float(barlow_twins_loss(a, b, lam)) == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_barlow_twins_zero_for_identical_decorrelated_views():
    # orthogonal +-1 columns: standardised, unit diagonal, zero off-diagonal correlation
    h = torch.tensor([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]],
                     dtype=torch.float32)[:, 1:]
    assert float(barlow_twins_loss(h, h)) == pytest.approx(0.0, abs=1e-4)
    assert float(barlow_twins_loss(h, -h)) > 1.0


def test_info_nce_prefers_matching_pairs():
    torch.manual_seed(0)
    a = torch.randn(8, 4)
    assert float(info_nce_loss(a, a)) < float(info_nce_loss(a, a.roll(1, 0)))


def _gradients_repeat(loss_of, parameters, times=10):
    """Whether ``times`` backward passes of the same loss give bit-identical gradients."""
    first = None
    for _ in range(times):
        for p in parameters:
            p.grad = None
        loss_of().backward()
        grads = [p.grad.clone() for p in parameters]
        if first is None:
            first = grads
        elif not all(torch.equal(a, b) for a, b in zip(first, grads)):
            return False
    return True


@pytest.mark.parametrize("loss", ["ultragcn", "lightgcn", "sce"])
def test_backward_passes_are_deterministic_on_cpu_threads(loss):
    # large enough that torch's CPU kernels run on several threads: indexing's backward
    # (atomic adds of repeated rows) gave different last bits from one pass to the next
    generator = torch.Generator().manual_seed(0)
    users = torch.randint(0, 120, (512,), generator=generator)
    positives = torch.randint(0, 50, (512,), generator=generator)
    negatives = torch.randint(0, 50, (512, 8), generator=generator)
    graph = sp.random(120, 50, density=0.2, random_state=0, format="csr")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if loss == "sce":
            hidden = torch.randn(2048, 16, requires_grad=True)
            weight = torch.randn(50, 16, requires_grad=True)
            targets = torch.randint(0, 50, (2048,), generator=generator)
            parameters = [hidden, weight]

            def loss_of():
                return scalable_cross_entropy(hidden, targets, weight, n_buckets=64,
                                              bucket_size_x=128, bucket_size_y=16,
                                              generator=torch.Generator().manual_seed(1))
        else:
            encoder = (UltraGCNEncoder(n_factors=16, n_negatives=8) if loss == "ultragcn"
                       else LightGCNEncoder(n_factors=16, n_layers=2)).build(graph)
            parameters = list(encoder.parameters())

            def loss_of():
                items = torch.cat([positives, negatives.reshape(-1)])
                return encoder.loss(encoder.embed(users, items), users, positives, negatives)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert _gradients_repeat(loss_of, parameters)
    finally:
        torch.set_num_threads(threads)
