"""The alignment variants: BT-SR's projected Barlow Twins, every-position alignment, the layer-0
graph view and stop-gradient on either side."""

import os

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch.nn import functional as F

from skcreate import CREATERecommender, load
from skcreate.data.interactions import Interactions, check_interactions
from skcreate.nn import Alignment, ProjectedBarlowTwins, barlow_twins_loss
from skcreate.nn.item_table import ItemTable

FAST = dict(n_factors=16, batch_size=64, random_state=0, warmup_epochs=0)


class Recording(Alignment):
    """Records what the joint network passes; a loss that reaches both sides."""

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def forward(self, sequence_states, graph_users):
        self.seen = (sequence_states, graph_users)
        return self.scale * (sequence_states * graph_users).sum()


def built(synthetic, **params):
    est = CREATERecommender().set_params(**{**FAST, **params})
    data, _ = Interactions.from_frame(check_interactions(synthetic), "user_id", "item_id",
                                      "timestamp")
    return est._build(data, np.random.default_rng(0))


def joint_batch(stages):
    return next(stages[1].batches(0))


def test_projected_barlow_is_barlow_twins_on_normalised_projections_per_dimension():
    torch.manual_seed(0)
    alignment = ProjectedBarlowTwins(barlow_lambda=0.01, projector_dim=8).build(4)
    a, b = torch.randn(32, 4), torch.randn(32, 4)
    project = alignment.projector
    expected = barlow_twins_loss(project(F.normalize(a, dim=-1)),
                                 project(F.normalize(b, dim=-1)), 0.01) / 8
    torch.testing.assert_close(alignment(a, b), expected)
    # the scale of the inputs does not matter: both views are normalised first
    torch.testing.assert_close(alignment(3 * a, 0.5 * b), expected)
    assert [p.shape for p in project.parameters()] == [(8, 4), (8,), (8, 8), (8,)]


def test_bt_sr_by_name_trains_its_projector_and_round_trips(synthetic, tmp_path):
    model, stages = built(synthetic, alignment="bt-sr", alignment__projector_dim=12)
    assert isinstance(model.alignment, ProjectedBarlowTwins)
    assert model.alignment.projector[0].weight.shape == (12, 16)
    est = CREATERecommender(**FAST, epochs=2, alignment=ProjectedBarlowTwins(projector_dim=12),
                            alignment_weight=0.25).fit(synthetic)
    projector = est.module_.alignment.projector[0].weight
    assert not torch.equal(projector, model.alignment.projector[0].weight)
    path = os.path.join(tmp_path, "bt-sr.skc")
    est.save(path)
    assert load(path).recommend(synthetic, k=5).equals(est.recommend(synthetic, k=5))


def test_every_position_pairs_each_real_state_with_its_user(synthetic):
    model, stages = built(synthetic, alignment=Recording(), alignment__positions="all")
    model.eval()  # no dropout: the states below are recomputed
    batch = joint_batch(stages)
    model(batch)
    states, graph_users = model.alignment.seen
    inputs = batch.sequence.inputs
    real = inputs != ItemTable.padding
    assert states.shape == (int(real.sum()), 16) == graph_users.shape
    users = batch.sequence.users.repeat_interleave(real.sum(1))
    embeddings = model.graph.propagate()[0]
    torch.testing.assert_close(graph_users, embeddings[users])
    hidden = model.sequence.encoder(inputs)
    torch.testing.assert_close(states, hidden[real])


def test_last_position_is_one_row_per_user(synthetic):
    model, stages = built(synthetic, alignment=Recording())
    batch = joint_batch(stages)
    model(batch)
    states, graph_users = model.alignment.seen
    assert len(states) == len(graph_users) == len(batch.sequence.users)


def test_layer0_view_reads_user_rows_without_propagating(synthetic, monkeypatch):
    model, stages = built(synthetic, alignment=Recording(), alignment__graph_view="layer0",
                          graph_weight=0.0)
    batch = joint_batch(stages)
    assert batch.edges is None

    def no_propagation(*args):
        raise AssertionError("the layer-0 view needs no propagation")

    monkeypatch.setattr(model.graph, "propagate", no_propagation)
    monkeypatch.setattr(model.graph, "embed", no_propagation)
    model(batch)
    users = batch.sequence.users
    torch.testing.assert_close(model.alignment.seen[1],
                               model.graph.encoder.user_embedding.weight[users])


@pytest.mark.parametrize("stop, frozen", [("graph", "graph"), ("sequence", "sequence"),
                                          (None, None)])
def test_stop_gradient_blocks_one_side(synthetic, stop, frozen):
    model, stages = built(synthetic, alignment=Recording(), alignment__stop_gradient=stop,
                          graph_weight=0.0)
    terms = model(joint_batch(stages))
    model.zero_grad()
    terms["align"].backward()
    users = model.graph.encoder.user_embedding.weight.grad
    blocks = [p.grad for p in model.sequence.encoder.blocks.parameters()]
    graph_trained = users is not None and bool(users.abs().sum() > 0)
    sequence_trained = any(g is not None and bool(g.abs().sum() > 0) for g in blocks)
    assert graph_trained == (frozen != "graph")
    assert sequence_trained == (frozen != "sequence")


@pytest.mark.parametrize("params", [
    dict(alignment__positions="all", alignment="contrastive", alignment_weight=0.2),
    dict(alignment__graph_view="layer0", alignment__stop_gradient="graph"),
    dict(alignment="bt-sr", alignment_weight=0.25, alignment__positions="all"),
])
def test_variants_fit_and_serve(synthetic, params):
    est = CREATERecommender().set_params(**{**FAST, "epochs": 2, "warmup_epochs": 1, **params})
    est.fit(synthetic)
    assert set(est.loss_terms_) == {"local", "global", "align"}
    assert np.isfinite(est.loss_curve_).all()
    recs = est.recommend(synthetic, k=3)
    assert recs.groupby("user_id").size().eq(3).all()
    # parts compare by identity (torch modules): compare what they print
    assert repr(clone(est).get_params()) == repr(est.get_params())


@pytest.mark.parametrize("params, match", [
    ({"alignment__positions": "first"}, "alignment: The 'positions' parameter of BarlowTwins"),
    ({"alignment__graph_view": "layer1"}, "'graph_view' parameter"),
    ({"alignment__stop_gradient": "both"}, "'stop_gradient' parameter"),
    ({"alignment": "bt-sr", "alignment__projector_dim": 0}, "'projector_dim' parameter of "
                                                             "ProjectedBarlowTwins"),
])
def test_bad_variant_parameters(synthetic, params, match):
    with pytest.raises(ValueError, match=match):
        CREATERecommender().set_params(**{**FAST, **params}).fit(synthetic)


def test_a_larger_alignment_batch_adds_random_users_to_the_alignment_only(synthetic):
    model, stages = built(synthetic, alignment=Recording(), alignment_batch_size=100)
    batch = joint_batch(stages)
    extra = batch.align
    assert len(extra.users) == 100 - 64
    assert set(extra.users.tolist()) <= set(stages[1].batches.sequences.rows.tolist())
    terms = model(batch)
    states, graph_users = model.alignment.seen
    assert len(states) == len(graph_users) == len(batch.sequence.users) + 36
    torch.testing.assert_close(graph_users[64:], model.graph.propagate()[0][extra.users])
    assert set(terms) == {"local", "global", "align"}
    est = CREATERecommender(**{**FAST, "epochs": 1, "alignment_batch_size": 100})
    assert est.fit(synthetic).loss_terms_["align"][0] > 0


def test_alignment_batch_size_below_the_batch_is_refused(synthetic):
    with pytest.raises(ValueError, match="alignment_batch_size"):
        CREATERecommender(**{**FAST, "alignment_batch_size": 32}).fit(synthetic)
