import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import BaseCrossValidator, check_cv

from skcreate.data.model_selection import (
    GlobalTemporalSplit,
    LeaveLastOutSplit,
    global_temporal_split,
    split_history_target,
    temporal_validation_split,
)


@st.composite
def interaction_frames(draw, max_rows=40):
    """Small frames with many timestamp ties and a shuffled row order."""
    n = draw(st.integers(1, max_rows))
    ints = st.lists(st.integers(0, 6), min_size=n, max_size=n)
    return pd.DataFrame({
        "user_id": draw(ints),
        "item_id": draw(st.lists(st.integers(0, 9), min_size=n, max_size=n)),
        "timestamp": draw(st.lists(st.integers(0, 15), min_size=n, max_size=n)),
    })


def user_sequences(X):
    """Positions of each user's rows in stable time order (reference, plain Python)."""
    out = {}
    for pos in sorted(range(len(X)), key=lambda p: (X["timestamp"].iloc[p], p)):
        out.setdefault(X["user_id"].iloc[pos], []).append(pos)
    return out


def reference_split(X, q, min_n, warm_only):
    """The global temporal split of docs/protocol.md written naively."""
    seqs = {u: s for u, s in user_sequences(X).items() if len(s) >= min_n}
    times = X["timestamp"].to_numpy()
    if not seqs:
        return None, None, None
    T = np.quantile(np.concatenate([times[s] for s in seqs.values()]), q)
    train, test = [], []
    for s in seqs.values():
        in_train = len(s) >= 2 and times[s[1]] <= T
        if in_train:
            train += [p for p in s if times[p] <= T]
        if (in_train and times[s[-1]] > T) or (not warm_only and not in_train and len(s) >= 2):
            test += s
    return T, sorted(train), sorted(test)


@settings(max_examples=150, deadline=None)
@given(X=interaction_frames(), q=st.floats(0.05, 0.95), min_n=st.integers(1, 4),
       warm_only=st.booleans())
def test_global_split_protocol(X, q, min_n, warm_only):
    cv = GlobalTemporalSplit(quantile=q, min_user_interactions=min_n, warm_users_only=warm_only)
    T, ref_train, ref_test = reference_split(X, q, min_n, warm_only)
    if not ref_train or not ref_test:
        with pytest.raises(ValueError, match="min_user_interactions|quantile"):
            list(cv.split(X))
        return
    (train, test), = list(cv.split(X))
    assert cv.thresholds(X) == [T]
    assert train.tolist() == ref_train and test.tolist() == ref_test
    # properties, stated directly
    for idx in (train, test):
        assert idx.dtype.kind == "i" and np.all(np.diff(idx) > 0)
        assert idx.min() >= 0 and idx.max() < len(X)
    assert (X["timestamp"].iloc[train] <= T).all()
    counts = X["user_id"].value_counts()
    assert (counts[X["user_id"].iloc[train]] >= min_n).all()
    seqs = user_sequences(X)
    test_users = set(X["user_id"].iloc[test])
    train_users = set(X["user_id"].iloc[train])
    for u in test_users:
        assert set(seqs[u]) <= set(test)  # all rows of a test user
        assert X["timestamp"].iloc[seqs[u][-1]] > T  # its target is after T
    if warm_only:
        assert test_users <= train_users


def test_beauty_acceptance_counts(shared_data):
    X = pd.read_csv(shared_data / "amazon-beauty.csv.gz")
    train, test = next(GlobalTemporalSplit(quantile=0.8).split(X))
    assert len(train) == 158_390
    assert X["user_id"].iloc[test].nunique() == 8_041


def test_datetime_timestamps_behave_like_ints():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"user_id": rng.integers(0, 30, 400), "item_id": rng.integers(0, 50, 400),
                      "timestamp": rng.integers(0, 10_000, 400) * 60})
    Xd = X.assign(timestamp=pd.to_datetime(X["timestamp"], unit="s"))
    cv = GlobalTemporalSplit(quantile=[0.6, 0.8])
    for (a, b), (c, d) in zip(cv.split(X), cv.split(Xd)):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    T_int, T_dt = cv.thresholds(X)[0], cv.thresholds(Xd)[0]
    assert isinstance(T_dt, pd.Timestamp)
    assert abs(T_dt - pd.Timestamp(0) - pd.Timedelta(seconds=T_int)) < pd.Timedelta(1, "us")


def test_several_quantiles_give_several_folds():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"user_id": rng.integers(0, 40, 500), "item_id": rng.integers(0, 60, 500),
                      "timestamp": rng.integers(0, 1000, 500)})
    cv = GlobalTemporalSplit(quantile=(0.6, 0.7, 0.8))
    folds = list(cv.split(X))
    assert cv.get_n_splits() == len(folds) == 3
    for q, (train, test) in zip((0.6, 0.7, 0.8), folds):
        single_train, single_test = next(GlobalTemporalSplit(quantile=q).split(X))
        np.testing.assert_array_equal(train, single_train)
        np.testing.assert_array_equal(test, single_test)
    assert len(folds[0][0]) < len(folds[2][0])


def test_splitter_is_an_sklearn_cv_with_a_repr():
    cv = GlobalTemporalSplit(quantile=[0.7, 0.8], min_user_interactions=5)
    assert isinstance(cv, BaseCrossValidator)
    assert check_cv(cv) is cv
    assert repr(cv).startswith("GlobalTemporalSplit(")
    assert "min_user_interactions=5" in repr(cv) and "quantile=[0.7, 0.8]" in repr(cv)
    assert GlobalTemporalSplit().get_n_splits() == 1


def test_custom_columns_string_ids_and_caller_frame_untouched():
    X = pd.DataFrame({"u": list("aaabbbccc"), "i": list("xyzxyzxyz"),
                      "t": [1, 2, 9, 3, 4, 5, 6, 7, 8], "extra": range(9)},
                     index=list("ABCDEFGHI"))
    before = X.copy()
    cv = GlobalTemporalSplit(quantile=0.75, user_col="u", item_col="i", time_col="t")
    train, test = next(cv.split(X))
    assert train.tolist() == [0, 1, 3, 4, 5, 6, 7]
    assert test.tolist() == [0, 1, 2, 6, 7, 8]
    pd.testing.assert_frame_equal(X, before)


def test_cold_users_when_not_warm_only():
    # user 3's second event is after T, so it has no train rows: a cold test user
    X = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2, 3, 3, 3],
                      "item_id": range(9),
                      "timestamp": [1, 2, 9, 2, 3, 8, 1, 8, 9]})
    warm = next(GlobalTemporalSplit(quantile=0.5).split(X))[1]
    cold = next(GlobalTemporalSplit(quantile=0.5, warm_users_only=False).split(X))[1]
    assert set(X["user_id"].iloc[warm]) == {1, 2}
    assert set(X["user_id"].iloc[cold]) == {1, 2, 3}


@pytest.mark.parametrize("params, match", [
    ({"quantile": 0.0}, "quantile"),
    ({"quantile": 1.0}, "quantile"),
    ({"quantile": "0.5"}, "quantile"),
    ({"quantile": []}, "quantile"),
    ({"quantile": [0.5, 1.5]}, "quantile"),
    ({"quantile": True}, "quantile"),
    ({"min_user_interactions": 0}, "min_user_interactions"),
    ({"min_user_interactions": 2.5}, "min_user_interactions"),
    ({"warm_users_only": "yes"}, "warm_users_only"),
])
def test_invalid_parameters(params, match):
    X = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "timestamp": [1, 2, 3]})
    with pytest.raises(ValueError, match=match):
        list(GlobalTemporalSplit(**params).split(X))


def test_empty_folds_and_bad_frames_raise():
    X = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2], "item_id": range(6),
                      "timestamp": [1, 5, 6, 2, 5, 6]})
    with pytest.raises(ValueError, match=r"quantile=0.1 .*no train rows"):
        list(GlobalTemporalSplit(quantile=0.1).split(X))
    with pytest.raises(ValueError, match=r"quantile=0.9 .*no test users"):
        list(GlobalTemporalSplit(quantile=[0.5, 0.9]).split(X))
    with pytest.raises(ValueError, match="min_user_interactions=4"):
        list(GlobalTemporalSplit(min_user_interactions=4).split(X))
    with pytest.raises(ValueError, match="timestamp"):
        list(GlobalTemporalSplit().split(X.drop(columns="timestamp")))


def random_frame(seed, n=600, extra=True):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"user_id": rng.integers(0, 50, n), "item_id": rng.integers(0, 80, n),
                      "timestamp": rng.integers(0, 2000, n)},
                     index=pd.Index(rng.permutation(n) * 10, name="row"))
    if extra:
        X["rating"] = rng.random(n)
    return X


def test_global_temporal_split_frames():
    X = random_frame(2)
    before = X.copy()
    train, validation, test = global_temporal_split(X, quantile=0.8, validation_quantile=0.9)
    pd.testing.assert_frame_equal(X, before)
    outer_idx, test_idx = next(GlobalTemporalSplit(0.8).split(X))
    outer = X.iloc[outer_idx]
    pd.testing.assert_frame_equal(test, X.iloc[test_idx])
    T = GlobalTemporalSplit(0.8).thresholds(X)[0]
    T_val = GlobalTemporalSplit(0.9).thresholds(outer)[0]
    for frame in (train, validation, test):
        assert list(frame.columns) == list(X.columns)
    # validation and inner train live inside the outer train: nothing after T leaks in
    assert set(train.index) <= set(outer.index) and set(validation.index) <= set(outer.index)
    assert (train["timestamp"] <= T_val).all()
    assert (validation["timestamp"] <= T).all()
    _, val_targets = split_history_target(validation)
    assert (val_targets["timestamp"] > T_val).all()
    _, test_targets = split_history_target(test)
    assert (test_targets["timestamp"] > T).all()
    assert set(validation["user_id"]) <= set(train["user_id"])
    # the validation users' rows are all their outer-train rows
    pd.testing.assert_frame_equal(validation, outer[outer["user_id"].isin(validation["user_id"])])


def test_global_temporal_split_forwards_options_and_rejects_lists():
    X = random_frame(3).rename(columns={"user_id": "u"})
    train, validation, test = global_temporal_split(X, user_col="u", min_user_interactions=5)
    assert (X["u"].value_counts()[train["u"]] >= 5).all()
    with pytest.raises(ValueError, match="validation_quantile"):
        global_temporal_split(X, validation_quantile=[0.8, 0.9], user_col="u")
    with pytest.raises(TypeError):
        global_temporal_split(X, n_last=3)


@settings(max_examples=100, deadline=None)
@given(X=interaction_frames(), n_last=st.integers(1, 3), min_n=st.integers(1, 4))
def test_leave_last_out(X, n_last, min_n):
    cv = LeaveLastOutSplit(n_last=n_last, min_user_interactions=min_n)
    eligible = {u: s for u, s in user_sequences(X).items() if len(s) >= max(min_n, n_last + 1)}
    if not eligible:
        with pytest.raises(ValueError, match="n_last"):
            list(cv.split(X))
        return
    (train, test), = list(cv.split(X))
    assert cv.get_n_splits() == 1
    assert train.tolist() == sorted(p for s in eligible.values() for p in s[:-n_last])
    assert test.tolist() == sorted(p for s in eligible.values() for p in s)
    # every test user's target (its last event) is held out
    assert not {s[-1] for s in eligible.values()} & set(train)


def test_leave_last_out_validates():
    X = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "timestamp": [1, 2, 3]})
    with pytest.raises(ValueError, match="n_last"):
        list(LeaveLastOutSplit(n_last=0).split(X))
    assert "n_last=2" in repr(LeaveLastOutSplit(n_last=2))


def test_split_history_target_ties_and_order():
    X = pd.DataFrame({"user_id": ["b", "a", "b", "a", "a", "c"],
                      "item_id": [1, 2, 3, 4, 5, 6],
                      "timestamp": [5, 3, 5, 1, 3, 7],
                      "extra": list("pqrstu")}, index=[10, 11, 12, 13, 14, 15])
    before = X.copy()
    history, targets = split_history_target(X)
    pd.testing.assert_frame_equal(X, before)
    # ties at the last time: the later row is the target
    assert targets.index.tolist() == [12, 14, 15]
    assert history.index.tolist() == [10, 11, 13]
    assert list(history.columns) == list(X.columns) == list(targets.columns)


@settings(max_examples=60, deadline=None)
@given(X=interaction_frames())
def test_split_history_target_matches_reference(X):
    history, targets = split_history_target(X)
    last = sorted(s[-1] for s in user_sequences(X).values())
    assert targets.index.tolist() == last
    assert history.index.tolist() == [p for p in range(len(X)) if p not in set(last)]


def test_far_future_seconds_split_like_ints():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"user_id": rng.integers(0, 20, 200), "item_id": rng.integers(0, 30, 200),
                      "timestamp": rng.integers(0, 1000, 200)})
    # years 2262+ are out of nanosecond range: seconds since 9000-01-01
    start = np.datetime64("9000-01-01", "s")
    Xs = X.assign(timestamp=start + X["timestamp"].to_numpy().astype("timedelta64[s]"))
    assert Xs["timestamp"].dtype == "datetime64[s]"
    cv = GlobalTemporalSplit(quantile=0.7)
    (a, b), (c, d) = next(cv.split(X)), next(cv.split(Xs))
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, d)
    T, T_s = cv.thresholds(X)[0], cv.thresholds(Xs)[0]
    assert T_s == pd.Timestamp(start + np.timedelta64(int(round(T)), "s"))
    tz = Xs.assign(timestamp=Xs["timestamp"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"))
    assert cv.thresholds(tz)[0] == T_s.tz_localize("UTC")


def test_repeated_quantiles_are_an_error():
    # a repeated quantile repeats its fold, which would count twice in a cross-validated mean
    with pytest.raises(ValueError, match=r"must not repeat a value.*repeated: \[0.5\]"):
        GlobalTemporalSplit(quantile=[0.5, 0.3, 0.5]).get_n_splits()


def test_temporal_validation_split_rejects_several_quantiles():
    X = pd.DataFrame({"user_id": [1] * 5 + [2] * 5, "item_id": list(range(10)),
                      "timestamp": [1, 2, 3, 7, 10, 1, 2, 3, 4, 9]})
    # it used to split at the first quantile and ignore the others
    with pytest.raises(ValueError, match=r"quantile must be a single float in \(0, 1\), got "
                                         r"\[0.3, 0.8\]"):
        temporal_validation_split(X, [0.3, 0.8])
