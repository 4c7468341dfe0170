import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from skcreate.data.preprocessing import DropConsecutiveRepeats, IdFilter, MinInteractionsFilter


@st.composite
def interaction_frames(draw, max_rows=60):
    n = draw(st.integers(1, max_rows))
    return pd.DataFrame({
        "user_id": draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)),
        "item_id": draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)),
        "timestamp": draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)),
    })


def reference_core(X, mu, mi):
    """k-core by repeated filtering (plain pandas)."""
    while True:
        users, items = X["user_id"].value_counts(), X["item_id"].value_counts()
        keep = (users[X["user_id"]].to_numpy() >= mu) & (items[X["item_id"]].to_numpy() >= mi)
        if keep.all():
            return X
        X = X[keep]


@settings(max_examples=100, deadline=None)
@given(X=interaction_frames(), mu=st.integers(1, 4), mi=st.integers(1, 4))
def test_k_core_fixed_point(X, mu, mi):
    expected = reference_core(X, mu, mi)
    f = MinInteractionsFilter(mu, mi)
    if expected.empty:
        with pytest.raises(ValueError, match="No interaction survives"):
            f.fit(X)
        return
    out = f.fit_transform(X)
    pd.testing.assert_frame_equal(out, expected)
    # fixed point: every user and item meets its threshold, and filtering again changes nothing
    assert out["user_id"].value_counts().min() >= mu
    assert out["item_id"].value_counts().min() >= mi
    pd.testing.assert_frame_equal(MinInteractionsFilter(mu, mi).fit_transform(out), out)
    assert set(f.users_) == set(out["user_id"]) and set(f.items_) == set(out["item_id"])


def test_single_pass_and_transform_of_new_frames():
    X = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3], "item_id": [1, 2, 1, 3, 1, 2]})
    # once: item 3 goes (1 row), user 2 survives with one row
    once = MinInteractionsFilter(2, 2, iterate=False).fit(X)
    assert once.transform(X).index.tolist() == [0, 1, 2, 4, 5]
    assert once.n_iter_ == 1
    full = MinInteractionsFilter(2, 2).fit(X)
    assert full.transform(X).index.tolist() == [0, 1, 4, 5]
    assert list(full.removed_users_) == [2] and sorted(full.items_) == [1, 2]
    new = pd.DataFrame({"user_id": [2, 9, 9, 1], "item_id": [1, 1, 3, 2]})
    # removed user 2 dropped, new user 9 kept, unknown item 3 dropped
    assert full.transform(new).index.tolist() == [1, 3]


def test_min_filter_validates():
    X = pd.DataFrame({"user_id": [1], "item_id": [1]})
    with pytest.raises(ValueError, match="min_user_interactions"):
        MinInteractionsFilter(0).fit(X)
    with pytest.raises(ValueError, match="min_item_interactions"):
        MinInteractionsFilter(1, 2.0).fit(X)
    with pytest.raises(ValueError, match="iterate"):
        MinInteractionsFilter(1, 1, iterate="yes").fit(X)
    with pytest.raises(ValueError, match="item_id"):
        MinInteractionsFilter(1, 1).fit(X.drop(columns="item_id"))
    with pytest.raises(ValueError, match="No interaction survives"):
        MinInteractionsFilter(2, 1).fit(X)
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        MinInteractionsFilter().transform(X)


def reference_repeats(X):
    keep = np.ones(len(X), dtype=bool)
    previous = {}
    for pos in sorted(range(len(X)), key=lambda p: (X["timestamp"].iloc[p], p)):
        user, item = X["user_id"].iloc[pos], X["item_id"].iloc[pos]
        keep[pos] = previous.get(user) != item
        previous[user] = item
    return X[keep]


@settings(max_examples=100, deadline=None)
@given(X=interaction_frames())
def test_drop_consecutive_repeats_matches_reference(X):
    pd.testing.assert_frame_equal(DropConsecutiveRepeats().fit_transform(X), reference_repeats(X))


def test_drop_consecutive_repeats_example_and_caller_frame():
    X = pd.DataFrame({"user_id": ["a", "b", "a", "a", "a", "b"],
                      "item_id": ["x", "x", "x", "y", "x", "x"],
                      "timestamp": pd.to_datetime([3, 1, 1, 3, 2, 2], unit="D"),
                      "extra": range(6)}, index=list("pqrstu"))
    before = X.copy()
    # user a in time order: r(x, t1) e(x, t2) p(x, t3) s(y, t3); user b: q(x) u(x)
    out = DropConsecutiveRepeats().transform(X)  # stateless: no fit needed
    assert out.index.tolist() == ["q", "r", "s"]
    assert list(out.columns) == list(X.columns)
    pd.testing.assert_frame_equal(X, before)
    with pytest.raises(ValueError, match="timestamp"):
        DropConsecutiveRepeats().fit(X.drop(columns="timestamp"))


def test_id_filter():
    X = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [5, 6, 5, 7]}, index=[9, 8, 7, 6])
    before = X.copy()
    assert IdFilter(users=[1, 3]).fit_transform(X).index.tolist() == [9, 8, 6]
    assert IdFilter(users={1, 2}, items=[5]).fit_transform(X).index.tolist() == [9, 7]
    assert IdFilter(users=[1], items=[7], exclude=True).fit_transform(X).index.tolist() == [7]
    assert IdFilter(items=np.array([6]), exclude=True).transform(X).index.tolist() == [9, 7, 6]
    pd.testing.assert_frame_equal(IdFilter().fit_transform(X), X)
    pd.testing.assert_frame_equal(X, before)
    with pytest.raises(ValueError, match="users"):
        IdFilter(users="abc").fit(X)
    with pytest.raises(ValueError, match="items"):
        IdFilter(items=5).fit(X)
    with pytest.raises(ValueError, match="exclude"):
        IdFilter(users=[1], exclude=None).fit(X)
    with pytest.raises(ValueError, match="user_id"):
        IdFilter().fit(X.drop(columns="user_id"))


def test_sklearn_api_and_pipeline():
    X = pd.DataFrame({"u": [1, 1, 1, 2, 2, 3], "i": [5, 5, 6, 5, 6, 7],
                      "t": [1, 2, 3, 1, 2, 3], "extra": range(6)})
    pipe = make_pipeline(DropConsecutiveRepeats("u", "i", "t"), IdFilter(items=[7], exclude=True,
                                                                         user_col="u",
                                                                         item_col="i"),
                         MinInteractionsFilter(2, 2, user_col="u", item_col="i"))
    out = pipe.fit_transform(X)
    assert out.index.tolist() == [0, 2, 3, 4]
    for step in pipe:
        params = step.get_params()
        assert clone(step).get_params() == params
        assert repr(step).startswith(type(step).__name__)
    f = MinInteractionsFilter(min_user_interactions=7)
    assert f.get_params()["min_user_interactions"] == 7
    assert not hasattr(f, "users_")


def test_id_filter_rejects_one_pass_iterators():
    # fit would use the generator up and transform then keep no row, without a word
    X = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 5]})
    with pytest.raises(ValueError, match="one-pass iterator"):
        IdFilter(users=(u for u in [1])).fit(X)
    with pytest.raises(ValueError, match="items must be None or a list-like"):
        IdFilter(items=iter([5])).fit_transform(X)


def test_min_filter_warns_when_no_item_was_kept_at_fit():
    X = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [1, 2, 1, 2]})
    fitted = MinInteractionsFilter(1, 1).fit(X)
    # the same ids as text: nothing matches, which used to return an empty frame silently
    with pytest.warns(UserWarning, match=r"No item of X\['item_id'\] is among the 2 items"):
        assert len(fitted.transform(X.astype({"item_id": str}))) == 0


@settings(max_examples=30, deadline=None)
@given(X=interaction_frames(max_rows=30), users=st.lists(st.integers(0, 8), max_size=4),
       items=st.lists(st.integers(0, 8), max_size=4))
def test_id_filter_keep_and_exclude_partition_the_frame(X, users, items):
    # with one list, keeping and excluding split the rows in two, each in the caller's order
    before = X.copy()
    for ids in ({"users": users}, {"items": items}):
        kept = IdFilter(**ids).fit_transform(X)
        dropped = IdFilter(**ids, exclude=True).fit_transform(X)
        assert kept.index.intersection(dropped.index).empty
        assert sorted(kept.index.append(dropped.index)) == X.index.tolist()
        assert kept.index.is_monotonic_increasing and dropped.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(X, before)
