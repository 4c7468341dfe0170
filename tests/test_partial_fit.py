"""partial_fit: updating fitted models with new interactions, new users and items included."""

import copy
import functools
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import skcreate
from skcreate.apps.cli import main
from skcreate.data.datasets import make_interactions
from skcreate.data.interactions import Interactions
from skcreate.training import train
from skcreate.nn import ItemTable
from skcreate.nn.optim import LazyAdam
from skcreate.training.growth import (fold_in_items, grow_into, grow_optimizer_state,
                                      stretch_new_item_steps, youngest_items)
from skcreate.nn.lightgcn import LightGCNEncoder
from skcreate.training import trainer as trainer_module
from skcreate.training.trainer import _only_users

DATA = make_interactions(n_users=150, n_items=60, random_state=0)
CUT = DATA.timestamp.quantile(0.85)
OLD = DATA[DATA.timestamp <= CUT]
# the rest, and a new user with two new items (one also seen by an existing user)
NEW = pd.concat([DATA[DATA.timestamp > CUT], pd.DataFrame({
    "user_id": [9000, 9000, 3], "item_id": [7000, 7001, 7000],
    "timestamp": [DATA.timestamp.max() + 1, DATA.timestamp.max() + 2, DATA.timestamp.max() + 1]})],
    ignore_index=True)
KNOWN = DATA[(DATA.timestamp > CUT) & DATA.user_id.isin(OLD.user_id)
             & DATA.item_id.isin(OLD.item_id)]

MODELS = {
    "popular": lambda: skcreate.PopularRecommender(),
    "random": lambda: skcreate.RandomRecommender(random_state=0),
    "puresvd": lambda: skcreate.PureSVDRecommender(n_factors=6, random_state=0),
    "als": lambda: skcreate.ALSRecommender(n_factors=8, iterations=3, random_state=0),
    "bpr": lambda: skcreate.BPRRecommender(n_factors=8, iterations=5, random_state=0),
    "sasrec": lambda: skcreate.SASRecRecommender(n_factors=16, epochs=2, random_state=0),
    "lightgcn": lambda: skcreate.LightGCNRecommender(n_factors=16, epochs=2, random_state=0),
    "ultragcn": lambda: skcreate.UltraGCNRecommender(n_factors=16, epochs=2, random_state=0),
    "create": lambda: skcreate.CREATERecommender(n_factors=16, epochs=2, warmup_epochs=1,
                                                 random_state=0),
    "bert4rec": lambda: skcreate.CREATERecommender(
        n_factors=16, epochs=1, warmup_epochs=1, sequence_encoder="bert4rec", random_state=0),
}


def _copy(est):
    return copy.deepcopy(est)


@pytest.fixture(scope="module")
def fitted():
    return {name: make().fit(OLD) for name, make in MODELS.items()}


def test_append_keeps_codes_and_orders_by_time():
    old, _ = Interactions.from_frame(OLD, "user_id", "item_id", "timestamp")
    new, _ = Interactions.from_frame(NEW, "user_id", "item_id", "timestamp")
    both = old.append(new)
    assert both.user_ids[:old.n_users].equals(old.user_ids)
    assert both.item_ids[:old.n_items].equals(old.item_ids)
    assert both.item_ids[old.n_items:].tolist() == [7000, 7001]
    assert both.user_ids[old.n_users:].tolist() == sorted(set(NEW.user_id) - set(OLD.user_id))
    # the same events as encoding everything at once, each user's in time order
    whole, _ = Interactions.from_frame(pd.concat([OLD, NEW]), "user_id", "item_id", "timestamp")
    for data in (both, whole):
        frame = pd.DataFrame({"user": data.user_ids.take(data.row_users),
                              "item": data.item_ids.take(data.items), "time": data.times})
        assert frame.groupby("user")["time"].apply(lambda t: t.is_monotonic_increasing).all()
    as_set = lambda d: sorted(zip(d.user_ids.take(d.row_users), d.item_ids.take(d.items),
                                  d.times))
    assert as_set(both) == as_set(whole)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5), st.integers(0, 3)),
                min_size=1, max_size=12),
       st.lists(st.tuples(st.integers(0, 6), st.integers(0, 7), st.integers(0, 3)),
                min_size=1, max_size=12))
def test_append_puts_old_events_first_at_equal_times(first, second):
    frames = [pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
              for rows in (first, second)]
    old, _ = Interactions.from_frame(frames[0], "user_id", "item_id", "timestamp")
    new, _ = Interactions.from_frame(frames[1], "user_id", "item_id", "timestamp")
    both = old.append(new)
    for user in both.user_ids:
        row = both.user_ids.get_loc(user)
        got = list(zip(both.times[both.indptr[row]:both.indptr[row + 1]],
                       both.item_ids.take(both.items[both.indptr[row]:both.indptr[row + 1]])))
        expected = []
        for frame in frames:
            mine = frame[frame.user_id == user]
            expected += list(zip(mine.timestamp, mine.item_id))
        # a stable sort by time of old events followed by new ones
        assert got == sorted(expected, key=lambda event: event[0])


@pytest.mark.parametrize("name", MODELS)
def test_new_items_and_users_are_served(fitted, name):
    est = _copy(fitted[name])
    before = est.item_ids_.copy()
    assert not est.recommend(k=est.n_items_)["item_id"].isin([7000, 7001]).any()
    est.partial_fit(NEW, epochs=1)
    assert est.item_ids_[:len(before)].equals(before)
    assert est.n_items_ == len(before) + 2 and len(est.item_popularity_) == est.n_items_
    recs = est.recommend(k=est.n_items_)
    # every item, the new ones included, can be recommended; the new user is served
    assert recs["item_id"].isin([7000, 7001]).any()
    new_user = recs[recs.user_id == 9000]
    assert len(new_user) == est.n_items_ - 2 and not new_user.item_id.isin([7000, 7001]).any()
    history = pd.DataFrame({"user_id": ["x", "x"], "item_id": [7001, 5], "timestamp": [0, 1]})
    assert len(est.recommend(history, k=3)) == 3


@pytest.mark.parametrize("name", ["sasrec", "create", "bert4rec", "lightgcn", "ultragcn"])
def test_growth_keeps_fitted_rows_exactly(fitted, name):
    est = fitted[name]
    data = est.interactions_.append(
        Interactions.from_frame(NEW, "user_id", "item_id", "timestamp")[0])
    with torch.random.fork_rng(devices=[]):
        module, _ = est._build(data, np.random.default_rng(1))
    fresh = copy.deepcopy(module.state_dict())
    maps = grow_into(module, est.module_, est.train_user_ids_.get_indexer(data.user_ids))
    n_old = est.n_items_
    for name_, value in module.state_dict().items():
        old = est.module_.state_dict()[name_]
        rows = maps.get(name_)
        if rows is None:
            if name_ in dict(module.named_parameters()):
                assert torch.equal(value, old), name_
            continue
        kept = rows >= 0
        assert torch.equal(value[torch.as_tensor(kept)], old[torch.as_tensor(rows[kept])])
        assert torch.equal(value[torch.as_tensor(~kept)], fresh[name_][torch.as_tensor(~kept)])
        if name_.endswith("item_table.embedding.weight"):
            # the catalogue rows of the new items are after the fitted ones; tokens follow
            assert (rows[n_old + 1:n_old + 3] == -1).all()
    state = grow_optimizer_state(est.optimizer_state_, module, maps)
    assert state["state"].keys() == est.optimizer_state_["state"].keys()


def test_no_growth_is_the_identity(fitted):
    est = fitted["create"]
    data = est.interactions_
    with torch.random.fork_rng(devices=[]):
        module, _ = est._build(data, np.random.default_rng(1))
    maps = grow_into(module, est.module_, np.arange(data.n_users))
    for name, value in module.named_parameters():
        assert torch.equal(value, dict(est.module_.named_parameters())[name])
    state = grow_optimizer_state(est.optimizer_state_, module, maps)
    for index, entry in est.optimizer_state_["state"].items():
        for key, value in entry.items():
            assert torch.equal(torch.as_tensor(state["state"][index][key]),
                               torch.as_tensor(value))


def test_known_ids_continue_the_fitted_training(fitted):
    """Without new ids, partial_fit is training continued from the fitted weights and
    optimiser state on the touched users' histories, nothing else."""
    est = _copy(fitted["sasrec"])
    reference = _copy(est)
    est.partial_fit(KNOWN, epochs=2)
    data = reference.interactions_.append(
        Interactions.from_frame(KNOWN, "user_id", "item_id", "timestamp")[0])
    assert data.n_items == reference.n_items_ and data.n_users == len(reference.train_user_ids_)
    touched = np.sort(data.user_ids.get_indexer(KNOWN.user_id.unique()))
    seed = int(np.random.RandomState(0).randint(2**31 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        reference._build(data, rng)  # the update builds the grown network first
        _, stages = reference._build(_only_users(data, touched), rng)
        stages[0].epochs = 2
        module = reference.module_
        result = train(module, stages, reference._optimizer(module),
                       optimizer_state=reference.optimizer_state_)
    for name, value in module.state_dict().items():
        torch.testing.assert_close(est.module_.state_dict()[name], value, rtol=0, atol=0)
    assert est.loss_curve_[-2:] == result.loss_curve
    steps = [entry["step"] for entry in est.optimizer_state_["state"].values()]
    fitted_steps = [entry["step"] for entry in fitted["sasrec"].optimizer_state_["state"].values()]
    assert all(after > before for after, before in zip(steps, fitted_steps))


@pytest.mark.parametrize("name", ["als", "bpr", "puresvd", "sasrec", "create", "lightgcn"])
def test_partial_fit_after_load_equals_one_without(fitted, name, tmp_path):
    est = _copy(fitted[name])
    est.save(tmp_path / "m.skc")
    loaded = skcreate.load(tmp_path / "m.skc")
    est.partial_fit(NEW, epochs=1)
    loaded.partial_fit(NEW, epochs=1)
    pd.testing.assert_frame_equal(est.recommend(k=10), loaded.recommend(k=10))
    # and the updated model saves and loads, optimiser state included
    loaded.save(tmp_path / "m2.skc")
    again = skcreate.load(tmp_path / "m2.skc")
    pd.testing.assert_frame_equal(again.recommend(k=10), est.recommend(k=10))


@pytest.mark.parametrize("name", ["lightgcn", "ultragcn"])
def test_a_served_graph_model_serves_its_update(fitted, name):
    served, unserved = _copy(fitted[name]), _copy(fitted[name])
    served.recommend(k=10)  # keeps the propagated tables
    served.partial_fit(NEW, epochs=1)
    unserved.partial_fit(NEW, epochs=1)
    pd.testing.assert_frame_equal(served.recommend(k=10), unserved.recommend(k=10))


def test_unfitted_partial_fit_is_fit():
    a = MODELS["sasrec"]().partial_fit(OLD)
    b = MODELS["sasrec"]().fit(OLD)
    pd.testing.assert_frame_equal(a.recommend(k=5), b.recommend(k=5))


@pytest.mark.parametrize("name", ["als", "sasrec", "create"])
def test_refusals_leave_the_model_as_it_was(fitted, name):
    est = _copy(fitted[name])
    before = est.recommend(k=5)
    bad = [
        (NEW.drop(columns="item_id"), {}, ValueError, "'item_id'"),
        (NEW.assign(timestamp=pd.to_datetime(NEW.timestamp, unit="s")), {}, ValueError,
         "times of dtype datetime64"),
        (NEW, {"epochs": 0}, ValueError, "epochs must be an integer >= 1"),
    ]
    for X, options, error, message in bad:
        with pytest.raises(error, match=message):
            est.partial_fit(X, **options)
    est.set_params(n_factors=4)
    with pytest.raises(ValueError, match=r"changed since fit \(n_factors 8|16 at fit, now 4"):
        est.partial_fit(NEW)
    pd.testing.assert_frame_equal(est.recommend(k=5), before)


def test_run_settings_may_change_but_parts_may_not(fitted):
    est = _copy(fitted["create"])
    est.set_params(learning_rate=1e-4, epochs=1, trainer__verbose=False)
    est.partial_fit(NEW)
    # how a graph step is computed is a run setting too (a model fitted before "auto"
    # existed stays updatable)
    est.set_params(graph_encoder__row_sparse=True, graph_encoder__propagation="historical",
                   graph_encoder__fanout=3)
    est.partial_fit(NEW)
    assert est.module_.graph.encoder._row_sparse
    # so are the joint and warm-up steps' graph parts ("auto": light under historical steps)
    assert not est.module_.neighbour_gradients
    assert not est.module_.warmup_neighbour_gradients
    est.set_params(joint_graph_step="full", warmup_graph_step="full")
    est.partial_fit(NEW)
    assert est.module_.neighbour_gradients and est.module_.warmup_neighbour_gradients
    est.fit_params_["graph_encoder__row_sparse"] = "False"
    est.partial_fit(NEW)
    est.set_params(graph_encoder__n_layers=2)
    with pytest.raises(ValueError, match="graph_encoder__n_layers"):
        est.partial_fit(NEW)
    est.set_params(graph_encoder="ultragcn")
    with pytest.raises(ValueError, match="graph_encoder"):
        est.partial_fit(NEW)
    with pytest.raises(ValueError, match="warmup_epochs must be an integer >= 0"):
        fitted["create"].partial_fit(NEW, warmup_epochs=-1)


def test_create_rebuilds_its_graph_and_warms_up(fitted):
    est = _copy(fitted["create"])
    est.partial_fit(NEW, epochs=1, warmup_epochs=2)
    assert est.epoch_stages_[-3:] == ["warmup", "warmup", "joint"]
    encoder = est.module_.graph.encoder
    expected, _ = est.interactions_.graph(est.graph_last_n, est.graph_last_frac)
    assert encoder.n_users == est.interactions_.n_users
    assert expected.shape == (est.interactions_.n_users, est.n_items_)
    assert len(est.train_user_ids_) == est.interactions_.n_users


def test_create_update_warms_up_a_third_of_the_fit_by_default():
    est = skcreate.CREATERecommender(n_factors=8, epochs=1, warmup_epochs=6,
                                     random_state=0).fit(OLD)
    assert est.warmup_epochs_ == 6
    est.partial_fit(NEW)
    assert est.epoch_stages_[6 + 1:] == ["warmup"] * 2 + ["joint"]
    est.partial_fit(NEW, warmup_epochs=0)
    assert est.epoch_stages_[-2:] == ["joint", "joint"]


def test_cli_update(tmp_path, capsys):
    OLD.to_csv(tmp_path / "old.csv", index=False)
    NEW.to_csv(tmp_path / "new.csv", index=False)
    assert main(["fit", str(tmp_path / "old.csv"), "--model", "ALS", "--set", "n_factors=4",
                 "--set", "iterations=2", "--quiet", "--out", str(tmp_path / "m.skc")]) == 0
    assert main(["update", str(tmp_path / "m.skc"), str(tmp_path / "new.csv"), "--epochs", "1",
                 "--out", str(tmp_path / "m2.skc")]) == 0
    assert "2 new items" in capsys.readouterr().err
    updated = skcreate.load(tmp_path / "m2.skc")
    expected = skcreate.load(tmp_path / "m.skc").partial_fit(NEW, epochs=1)
    pd.testing.assert_frame_equal(updated.recommend(k=5), expected.recommend(k=5))
    assert main(["update", str(tmp_path / "m.skc"), str(tmp_path / "new.csv"),
                 "--warmup-epochs", "1", "--out", str(tmp_path / "m3.skc")]) == 1
    assert "has no warm-up" in capsys.readouterr().err
    assert main(["update", str(tmp_path / "m.skc"), str(tmp_path / "new.csv"),
                 "--new-item-step", "2", "--out", str(tmp_path / "m3.skc")]) == 1
    assert "has no new-item step" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        NEW.assign(timestamp=pd.to_datetime(NEW.timestamp, unit="s")).to_csv(
            tmp_path / "dates.csv", index=False)
    assert main(["update", str(tmp_path / "m.skc"), str(tmp_path / "dates.csv"),
                 "--out", str(tmp_path / "m3.skc")]) == 1
    assert "fitted on numeric times" in capsys.readouterr().err


def test_replay_trains_users_without_new_events_too(fitted):
    untouched = sorted(set(OLD.user_id) - set(NEW.user_id))
    rows = fitted["als"].interactions_.user_ids.get_indexer(untouched)
    before = fitted["als"].user_factors_[rows]
    alone = _copy(fitted["als"]).partial_fit(NEW, epochs=1)
    np.testing.assert_array_equal(alone.user_factors_[rows], before)
    every = _copy(fitted["als"]).partial_fit(NEW, epochs=1, replay=1.0)
    assert not np.isclose(every.user_factors_[rows], before).all(axis=1).any()
    some = _copy(fitted["als"]).partial_fit(NEW, epochs=1, replay=0.5)
    changed = ~np.isclose(some.user_factors_[rows], before).all(axis=1)
    assert changed.sum() == round(0.5 * len(rows))
    for bad in (-0.1, 1.5, True, "all"):
        with pytest.raises(ValueError, match="replay must be a share in"):
            _copy(fitted["sasrec"]).partial_fit(NEW, replay=bad)


def _grown(est, frame):
    data = est.interactions_.append(
        Interactions.from_frame(frame, "user_id", "item_id", "timestamp")[0])
    with torch.random.fork_rng(devices=[]):
        module, _ = est._build(data, np.random.default_rng(1))
    grow_into(module, est.module_, est.train_user_ids_.get_indexer(data.user_ids))
    return data, module


def test_fold_in_starts_new_rows_from_the_states_before_them(fitted):
    est = fitted["sasrec"]
    # item 7002 only ever starts a history: no state precedes it
    frame = pd.concat([NEW, pd.DataFrame({"user_id": [9001], "item_id": [7002],
                                          "timestamp": [DATA.timestamp.max() + 3]})])
    data, module = _grown(est, frame)
    before = module.item_table.weight.detach().clone()
    first_new = est.n_items_
    # by hand, with the rows before the fold-in: one user at a time, every position whose
    # next item is a new one
    module.eval()
    states = {}
    with torch.no_grad():
        for user in range(data.n_users):
            sequence = torch.as_tensor(data.last_items(module.encoder.max_len + 1, [user]))
            if sequence.shape[1] < 2:
                continue
            hidden = module.encoder(sequence[:, :-1])[0]
            for position, row in enumerate(sequence[0, 1:].tolist()):
                if row - 1 >= first_new and sequence[0, position] != 0:
                    states.setdefault(row, []).append(hidden[position])
    module.train()
    assert fold_in_items(module.encoder, data, np.arange(data.n_users), first_new) == 2
    after = module.item_table.weight.detach()
    assert torch.equal(after[:first_new + 1], before[:first_new + 1])
    # at the median norm of the 3 fitted items first seen last (as many as are new)
    youngest = youngest_items(data, first_new, 3)
    first_seen = pd.Series(data.times).groupby(data.items).min()
    assert first_seen[youngest].min() >= first_seen.drop(youngest).loc[:first_new - 1].max()
    norm = before[torch.as_tensor(youngest) + 1].norm(dim=1).median()
    codes = data.item_ids.get_indexer([7000, 7001, 7002])
    for code in codes[:2]:
        mean = torch.stack(states[code + 1]).mean(0)
        torch.testing.assert_close(after[code + 1], mean / mean.norm() * norm)
    assert codes[2] + 1 not in states
    assert torch.equal(after[codes[2] + 1], before[codes[2] + 1])
    assert module.training  # the encoder's mode is given back


def test_youngest_items_are_those_first_seen_last():
    frame = pd.DataFrame({"user_id": [1, 1, 2, 2, 2], "item_id": [10, 11, 12, 10, 13],
                          "timestamp": [1, 5, 3, 6, 7]})
    data, _ = Interactions.from_frame(frame, "user_id", "item_id", "timestamp")
    codes = data.item_ids.get_indexer([13, 11, 12, 10])  # first seen at 7, 5, 3, 1
    np.testing.assert_array_equal(youngest_items(data, data.n_items, 2), codes[:2])
    np.testing.assert_array_equal(youngest_items(data, data.n_items, 9), codes)
    # only codes below first_new count
    below = youngest_items(data, int(codes[0]), 9)
    assert codes[0] not in below and set(below) == set(range(codes[0]))


def test_fold_in_is_an_option_and_leaves_bidirectional_encoders_alone(fitted):
    est = fitted["bert4rec"]
    data, module = _grown(est, NEW)
    before = module.sequence.item_table.weight.detach().clone()
    est._fold_in_items(module, data, np.arange(data.n_users), est.n_items_)
    assert torch.equal(module.sequence.item_table.weight, before)
    for name in ("sasrec", "create"):
        with pytest.raises(ValueError, match="fold_in must be True or False"):
            _copy(fitted[name]).partial_fit(NEW, fold_in="no")
    new_items = set(NEW.item_id) - set(OLD.item_id)
    folded = _copy(fitted["sasrec"]).partial_fit(NEW, epochs=1)
    assert folded.recommend(k=10).item_id.isin(new_items).any()


@pytest.mark.parametrize("optimizer, sparse", [(torch.optim.Adam, False), (LazyAdam, True)])
def test_stretched_steps_move_new_rows_further_and_nothing_else(optimizer, sparse):
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.items = ItemTable(n_items=6, n_factors=3, sparse=sparse)
            self.dense = torch.nn.Linear(3, 1)

    plain, stretched = Net(), Net()
    stretched.load_state_dict(plain.state_dict())
    make = functools.partial(optimizer, lr=0.1)
    optimizers = [make(plain.parameters()),
                  stretch_new_item_steps(make, stretched, 4, 3.0)(stretched.parameters())]
    start = plain.items.weight.detach().clone()
    rows = torch.tensor([1, 2, 5, 6, 6])  # codes 0, 1, 4, 5 (4 and 5 are new)
    for net, opt in zip((plain, stretched), optimizers):
        opt.zero_grad()
        net.dense(net.items(rows)).pow(2).sum().backward()
        opt.step()
    torch.testing.assert_close(stretched.dense.weight, plain.dense.weight)
    torch.testing.assert_close(stretched.items.weight[:5], plain.items.weight[:5])
    torch.testing.assert_close(stretched.items.weight[5:] - start[5:],
                               3 * (plain.items.weight[5:] - start[5:]))
    assert not torch.equal(plain.items.weight[5:], start[5:])


def test_a_stretched_step_is_the_optimiser_step_times_the_factor():
    torch.manual_seed(0)
    net = torch.nn.Module()
    net.items = ItemTable(n_items=5, n_factors=2)
    before = net.items.weight.detach().clone()
    optimizer = stretch_new_item_steps(functools.partial(torch.optim.SGD, lr=0.5), net, 3,
                                       4.0)(net.parameters())
    net.items.weight.grad = torch.ones_like(net.items.weight)
    optimizer.step()
    moved = net.items.weight.detach() - before
    # rows of codes 0..2 (rows 1..3) and padding move as SGD does, codes 3..4 four times
    torch.testing.assert_close(moved[:4], torch.full((4, 2), -0.5))
    torch.testing.assert_close(moved[4:], torch.full((2, 2), -2.0))
    make = functools.partial(torch.optim.SGD, lr=0.5)
    # a factor of 1, or no new item: the optimiser as it is, without hooks
    assert stretch_new_item_steps(make, net, 3, 1.0) is make
    assert stretch_new_item_steps(make, net, 5, 4.0) is make


@pytest.mark.parametrize("name", ["sasrec", "create"])
def test_new_item_step_is_validated_and_five_by_default(fitted, name):
    est = _copy(fitted[name])
    before = est.recommend(k=5)
    for bad in (0, -1.0, float("nan"), float("inf"), True, "3", None):
        with pytest.raises(ValueError, match="new_item_step must be a finite number > 0"):
            est.partial_fit(NEW, new_item_step=bad)
    pd.testing.assert_frame_equal(est.recommend(k=5), before)
    default = _copy(fitted[name]).partial_fit(NEW, epochs=1)
    five = _copy(fitted[name]).partial_fit(NEW, epochs=1, new_item_step=5)
    one = _copy(fitted[name]).partial_fit(NEW, epochs=1, new_item_step=1)
    weights = [next(part for part in model.module_.modules()
                    if isinstance(part, ItemTable)).weight.detach()
               for model in (default, five, one)]
    assert torch.equal(weights[0], weights[1])
    first_new = fitted[name].n_items_ + 1
    assert not torch.allclose(weights[0][first_new:], weights[2][first_new:])


def _cli_update_is_partial_fit(tmp_path, flags, **options):
    """A SASRec fitted by the CLI on OLD, then `skcreate update`d with NEW and ``flags``: the
    same recommendations as the model's partial_fit with ``options``."""
    OLD.to_csv(tmp_path / "old.csv", index=False)
    NEW.to_csv(tmp_path / "new.csv", index=False)
    assert main(["fit", str(tmp_path / "old.csv"), "--model", "SASRec", "--set", "n_factors=8",
                 "--set", "epochs=1", "--quiet", "--out", str(tmp_path / "m.skc")]) == 0
    assert main(["update", str(tmp_path / "m.skc"), str(tmp_path / "new.csv"), *flags,
                 "--out", str(tmp_path / "m2.skc")]) == 0
    updated = skcreate.load(tmp_path / "m2.skc")
    expected = skcreate.load(tmp_path / "m.skc").partial_fit(NEW, **options)
    pd.testing.assert_frame_equal(updated.recommend(k=5), expected.recommend(k=5))


def test_cli_update_passes_the_new_item_step(tmp_path, capsys):
    _cli_update_is_partial_fit(tmp_path, ["--epochs", "1", "--new-item-step", "2"],
                               epochs=1, new_item_step=2)
    assert main(["update", str(tmp_path / "m.skc"), str(tmp_path / "new.csv"),
                 "--new-item-step", "0", "--out", str(tmp_path / "m3.skc")]) == 1
    assert "new_item_step must be a finite number > 0" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["sasrec", "create"])
def test_an_averaged_update_is_the_mean_of_its_epochs_weights(fitted, name):
    """Two epochs averaged: the mean of the one-epoch update's weights and the two-epoch
    one's (an epoch's batches do not depend on how many follow); CREATE's warm-up is not
    averaged, and the optimiser state is the last epoch's."""
    one, two, averaged = (_copy(fitted[name]).partial_fit(NEW, epochs=epochs, average_epochs=last)
                          for epochs, last in ((1, 1), (2, 1), (2, 2)))
    parameters = dict(averaged.module_.named_parameters())
    for key, value in two.module_.named_parameters():
        mean = (dict(one.module_.named_parameters())[key] + value) / 2
        torch.testing.assert_close(parameters[key], mean)
    assert not all(torch.equal(parameters[key], value)
                   for key, value in two.module_.named_parameters())
    assert averaged.loss_curve_ == two.loss_curve_
    assert str(averaged.optimizer_state_) == str(two.optimizer_state_)


@pytest.mark.parametrize("name, default", [("sasrec", 1), ("create", 2)])
def test_average_epochs_is_validated_and_half_the_update_for_create(fitted, name, default):
    est = _copy(fitted[name])
    before = est.recommend(k=5)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="average_epochs must be an integer >= 1"):
            est.partial_fit(NEW, average_epochs=bad)
    with pytest.raises(ValueError, match="average_epochs=4 exceeds the update's epochs=3"):
        est.partial_fit(NEW, epochs=3, average_epochs=4)
    pd.testing.assert_frame_equal(est.recommend(k=5), before)

    def update(**average):
        return _copy(fitted[name]).partial_fit(NEW, epochs=3, **average).module_.parameters()

    for options, expected in (({}, default), ({"average_epochs": None}, 2)):
        for value, other in zip(update(**options), update(average_epochs=expected)):
            assert torch.equal(value, other)


def test_cli_update_passes_the_averaged_epochs(tmp_path, capsys):
    _cli_update_is_partial_fit(tmp_path, ["--epochs", "3", "--average-epochs", "3"],
                               epochs=3, average_epochs=3)
    assert main(["fit", str(tmp_path / "old.csv"), "--model", "ALS", "--set", "n_factors=4",
                 "--set", "iterations=1", "--quiet", "--out", str(tmp_path / "als.skc")]) == 0
    assert main(["update", str(tmp_path / "als.skc"), str(tmp_path / "new.csv"),
                 "--average-epochs", "2", "--out", str(tmp_path / "m3.skc")]) == 1
    assert "ALSRecommender averages no epochs" in capsys.readouterr().err


def test_create_update_takes_the_joint_step_its_network_takes(fitted, monkeypatch):
    """The update's network is built from the whole graph and its stages from its users'
    graph: where only the whole one is large enough for "auto" to take the light step, the
    joint batches hold the light step's edges too."""
    est = _copy(fitted["create"])
    data = est.interactions_.append(
        Interactions.from_frame(NEW, "user_id", "item_id", "timestamp")[0])
    touched = np.unique(data.user_ids.get_indexer(NEW.user_id.unique()))
    whole = data.graph(est.graph_last_n, est.graph_last_frac)[0].nnz
    part = _only_users(data, touched).graph(est.graph_last_n, est.graph_last_frac)[0].nnz
    assert part < whole
    monkeypatch.setattr(LightGCNEncoder, "large_graph", part)
    seen = {}

    def spy(module, stages, optimizer, **options):
        seen.update(module=module, stages=stages)
        return train(module, stages, optimizer, **options)

    monkeypatch.setattr(trainer_module, "train", spy)
    est.set_params(graph_batch_size=40).partial_fit(NEW, epochs=1, warmup_epochs=0)
    assert not seen["module"].neighbour_gradients
    assert seen["stages"][1].batches.edge_batch_size == 10
    monkeypatch.setattr(LightGCNEncoder, "large_graph", whole)  # neither is large: full
    _copy(fitted["create"]).partial_fit(NEW, epochs=1, warmup_epochs=0)
    assert seen["module"].neighbour_gradients
    assert seen["stages"][1].batches.edge_batch_size is None
