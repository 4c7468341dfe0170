import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skcreate.data.interactions import Interactions, check_interactions

COLS = ("user_id", "item_id", "timestamp")


def encode(frame, item_ids=None):
    return Interactions.from_frame(check_interactions(frame), *COLS, item_ids=item_ids)


def test_missing_column_names_it_and_lists_present(tiny):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['timestamp'\].*columns present"):
        check_interactions(tiny.drop(columns="timestamp"))


def test_custom_column_names(tiny):
    renamed = tiny.rename(columns={"user_id": "u", "item_id": "i", "timestamp": "t"})
    out = check_interactions(renamed, "u", "i", "t")
    assert list(out.columns) == ["u", "i", "t"]


def test_nan_ids_counted_with_first_rows(tiny):
    bad = tiny.astype({"item_id": object})
    bad.loc[[1, 4], "item_id"] = None
    with pytest.raises(ValueError, match=r"X\['item_id'\] has 2 missing value\(s\); first "
                                         r"offending rows: \[1, 4\]"):
        check_interactions(bad)


def test_nan_timestamps(tiny):
    bad = tiny.astype({"timestamp": float})
    bad.loc[3, "timestamp"] = np.nan
    with pytest.raises(ValueError, match=r"X\['timestamp'\] has 1 missing.*\[3\]"):
        check_interactions(bad)


def test_empty_frame():
    with pytest.raises(ValueError, match="X is empty"):
        check_interactions(pd.DataFrame(columns=list(COLS)))


def test_not_a_frame():
    with pytest.raises(TypeError, match="pandas .* DataFrame .* got ndarray"):
        check_interactions(np.zeros((3, 3)))


def test_string_timestamps_rejected(tiny):
    with pytest.raises(TypeError, match=r"X\['timestamp'\] must be numeric or datetime64"):
        check_interactions(tiny.astype({"timestamp": str}))


def test_unhashable_ids(tiny):
    bad = tiny.astype({"user_id": object})
    bad["user_id"] = [[1]] * len(bad)
    with pytest.raises(TypeError, match=r"X\['user_id'\] holds unhashable ids"):
        check_interactions(bad)


def test_caller_frame_untouched(tiny):
    before = tiny.copy()
    data, _ = encode(tiny)
    pd.testing.assert_frame_equal(tiny, before)


def test_stable_tie_rule_and_id_round_trip(tiny):
    data, n_unknown = encode(tiny)
    assert n_unknown == 0
    sequences = {
        data.user_ids[u]: list(data.item_ids.take(data.items[data.indptr[u]:data.indptr[u + 1]]))
        for u in range(data.n_users)
    }
    # b: w@1, then x and z tie at 5 and keep row order
    assert sequences == {"a": ["x", "y", "w"], "b": ["w", "x", "z"]}


def test_datetime_timestamps_order_like_ints(tiny):
    as_dates = tiny.assign(timestamp=pd.to_datetime(tiny["timestamp"], unit="D"))
    a, _ = encode(tiny)
    b, _ = encode(as_dates)
    np.testing.assert_array_equal(a.items, b.items)


def test_unknown_items_dropped_and_counted(tiny):
    data, _ = encode(tiny)
    new = pd.DataFrame({"user_id": ["c", "c", "c"], "item_id": ["x", "new", "y"],
                        "timestamp": [1, 2, 3]})
    encoded, n_unknown = encode(new, item_ids=data.item_ids)
    assert n_unknown == 1
    assert list(encoded.item_ids.take(encoded.items)) == ["x", "y"]


def test_last_items_left_padded_shifted(tiny):
    data, _ = encode(tiny)
    codes = {item: i + 1 for i, item in enumerate(data.item_ids)}
    np.testing.assert_array_equal(
        data.last_items(4),
        [[codes["x"], codes["y"], codes["w"]], [codes["w"], codes["x"], codes["z"]]])
    np.testing.assert_array_equal(data.last_items(2, rows=[1]), [[codes["x"], codes["z"]]])
    np.testing.assert_array_equal(data.recent(last_n=2).last_items(4, rows=[0]),
                                  [[codes["y"], codes["w"]]])


def test_recent_keeps_last_events(tiny):
    data, _ = encode(tiny)
    recent = data.recent(last_n=2)
    np.testing.assert_array_equal(recent.lengths, [2, 2])
    np.testing.assert_array_equal(recent.last_items(2), data.last_items(2))
    frac = data.recent(last_frac=0.1)
    np.testing.assert_array_equal(frac.lengths, [1, 1])


@st.composite
def frames(draw):
    n = draw(st.integers(1, 40))
    col = lambda hi: st.lists(st.integers(0, hi), min_size=n, max_size=n)  # noqa: E731
    return pd.DataFrame({"user_id": draw(col(5)), "item_id": draw(col(8)),
                         "timestamp": draw(col(6))})


@settings(max_examples=60, deadline=None)
@given(frames(), st.integers(1, 6))
def test_sequences_match_naive_reference(frame, max_len):
    data, _ = encode(frame)
    order = sorted(range(len(frame)), key=lambda p: (frame.user_id[p], frame.timestamp[p], p))
    expected = {}
    for p in order:
        expected.setdefault(frame.user_id[p], []).append(frame.item_id[p])
    padded = data.last_items(max_len)
    # columns that would be padding in every row are left out
    width = min(max_len, max(map(len, expected.values())))
    assert padded.shape == (data.n_users, width)
    matrix = data.to_csr().toarray()
    for u, user in enumerate(data.user_ids):
        tail = [data.item_ids.get_loc(i) + 1 for i in expected[user][-max_len:]]
        assert list(padded[u]) == [0] * (width - len(tail)) + tail
        assert set(np.flatnonzero(matrix[u])) == {data.item_ids.get_loc(i)
                                                  for i in expected[user]}
    last = data.last_items(max_len, rows=[data.n_users - 1])
    assert not padded[-1:, :-last.shape[1]].any()
    np.testing.assert_array_equal(last, padded[-1:, -last.shape[1]:])


def test_last_items_huge_max_len_costs_no_memory(tiny):
    data, _ = encode(tiny)
    np.testing.assert_array_equal(data.last_items(10**12), data.last_items(3))


def test_datetimes_outside_nanosecond_range_keep_their_order():
    # 9999-12-31 and 1500-01-01 do not fit int64 nanoseconds; ordering must not wrap around
    times = pd.Series(np.array(["9999-12-31", "2000-01-01", "1500-01-01"], dtype="datetime64[s]"))
    frame = pd.DataFrame({"user_id": [1, 1, 1], "item_id": ["late", "mid", "early"],
                          "timestamp": times})
    data, _ = encode(frame)
    assert list(data.item_ids.take(data.items)) == ["early", "mid", "late"]
    assert np.all(np.diff(data.times) > 0)


def test_tz_aware_times_order_by_instant():
    # 01:00 in Paris is 00:00 UTC, before 00:30 UTC given in another zone
    paris = pd.Timestamp("2000-01-01 01:00", tz="Europe/Paris")
    utc = pd.Timestamp("2000-01-01 00:30", tz="UTC")
    times = pd.Series([t.tz_convert("Asia/Tokyo") for t in (utc, paris)])
    frame = pd.DataFrame({"user_id": [1, 1], "item_id": ["second", "first"], "timestamp": times})
    data, _ = encode(frame)
    assert list(data.item_ids.take(data.items)) == ["first", "second"]


@pytest.mark.parametrize("values", [[True, 1, 2], [2, 1, np.False_]])
def test_booleans_beside_numbers_named(values):
    frame = pd.DataFrame({"user_id": np.array(values, dtype=object), "item_id": [1, 2, 3],
                          "timestamp": [1, 2, 3]}, index=[10, 11, 12])
    with pytest.raises(TypeError, match=r"X\['user_id'\] mixes booleans and numbers \(row 1[02]"):
        check_interactions(frame)


def test_mixed_ids_compare_by_equality():
    frame = pd.DataFrame({"user_id": pd.Series([1, "1", True, "a"], dtype=object),
                          "item_id": pd.Series([1, "1", 1.0, b"1"], dtype=object),
                          "timestamp": [1, 2, 3, 4]})
    data, _ = encode(frame.iloc[1:])
    assert data.n_users == 3 and data.n_items == 3
    # ids that do not compare are sorted by type name, then value: row order does not matter
    shuffled, _ = encode(frame.iloc[[3, 1, 2]])
    assert list(shuffled.item_ids) == list(data.item_ids) == [b"1", 1.0, "1"]


def test_ints_and_floats_are_one_kind_of_id():
    frame = pd.DataFrame({"user_id": pd.Series([1, 1.0, np.int64(2)], dtype=object),
                          "item_id": [1, 2, 3], "timestamp": [1, 2, 3]})
    data, _ = encode(frame)
    assert data.n_users == 2


@pytest.mark.parametrize("roles, message", [
    (dict(user_col="score"), r"may not be 'score' or 'rank'.*got user_col='score'"),
    (dict(item_col="rank"), r"may not be 'score' or 'rank'.*got item_col='rank'"),
    (dict(user_col="item_id"), r"user_col, item_col and time_col must name different columns, "
                               r"got user_col='item_id', item_col='item_id'"),
    (dict(time_col="user_id"), r"must name different columns.*time_col='user_id'"),
])
def test_column_roles_are_validated_together_at_fit(tiny, roles, message):
    from sklearn.exceptions import NotFittedError

    from skcreate import PopularRecommender

    # the frame does hold the named columns: only the roles clash
    frame = tiny.rename(columns={"user_id": roles.get("user_col", "user_id"),
                                 "item_id": roles.get("item_col", "item_id")})
    model = PopularRecommender(**roles)
    with pytest.raises(ValueError, match=message):
        model.fit(frame)
    with pytest.raises(NotFittedError):
        model.recommend(k=1)


def test_column_roles_set_after_fit_are_checked_at_recommend(tiny):
    from skcreate import PopularRecommender

    model = PopularRecommender().fit(tiny)
    with pytest.raises(ValueError, match=r"got item_col='rank'"):
        model.set_params(item_col="rank").recommend(k=1)


def test_check_interactions_refuses_one_column_in_two_roles(tiny):
    with pytest.raises(ValueError, match=r"user_col and item_col must name different columns"):
        check_interactions(tiny, "user_id", "user_id", require_time=False)


def test_duplicate_column_names_are_named(tiny):
    doubled = pd.concat([tiny, tiny[["item_id"]]], axis=1)
    with pytest.raises(ValueError, match=r"duplicate column name\(s\) \['item_id'\]"):
        check_interactions(doubled)
    # a repeated column that is not read is harmless
    extra = pd.concat([tiny, tiny[["rating"]]], axis=1)
    assert len(check_interactions(extra)) == len(tiny)


def test_graph_keeps_each_users_recent_distinct_edges(tiny):
    data, _ = encode(tiny)
    user_items, (users, items) = data.graph(last_n=2)
    np.testing.assert_array_equal(user_items.toarray(), data.recent(last_n=2).to_csr().toarray())
    assert users.dtype == items.dtype == np.int64
    assert sorted(zip(users, items)) == sorted(zip(*user_items.nonzero()))
    full, _ = data.graph()
    assert full.nnz >= user_items.nnz
