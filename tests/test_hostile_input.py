"""Hostile input: generated frames thrown at every estimator, the pipeline and the splitters.

Two properties. An *equivalent* frame (the same events under another id type, time encoding,
index, column names, extra columns or as a polars frame) gives exactly the results of the plain
integer frame, errors included. A *broken* frame (missing values, text timestamps, booleans beside
numbers, unhashable ids, no rows, a missing column, no frame at all) gives a ValueError or
TypeError that names the frame and the column. The caller's frame is never modified.
"""

import copy

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from skcreate import (ALSRecommender, BPRRecommender, CREATERecommender, GlobalTemporalSplit,
                      LeaveLastOutSplit, LightGCNRecommender, PopRandomRecommender,
                      PopularRecommender, PureSVDRecommender, RandomRecommender,
                      RecommenderPipeline, SASRecRecommender, UltraGCNRecommender,
                      global_temporal_split)
from skcreate.data.model_selection import split_history_target
from skcreate.nn import SASRecEncoder
from skcreate.data.preprocessing import DropConsecutiveRepeats, MinInteractionsFilter

NEURAL = {"n_factors": 8, "epochs": 1, "batch_size": 16, "random_state": 0}
SEQUENTIAL = {"max_len": 4, "n_blocks": 1, **NEURAL}
ESTIMATORS = [
    PopularRecommender(),
    RandomRecommender(random_state=0),
    PopRandomRecommender(random_state=0),
    PureSVDRecommender(n_factors=1, random_state=0),
    ALSRecommender(n_factors=4, iterations=2, num_threads=1, random_state=0),
    BPRRecommender(n_factors=4, iterations=3, num_threads=1, random_state=0),
    RecommenderPipeline([("repeats", DropConsecutiveRepeats()),
                         ("filter", MinInteractionsFilter(1, 2)),
                         ("popular", PopularRecommender())]),
    LightGCNRecommender(n_layers=1, **NEURAL),
    UltraGCNRecommender(n_negatives=2, n_neighbours=2, **NEURAL),
    SASRecRecommender(**SEQUENTIAL),
    CREATERecommender(warmup_epochs=0, graph_batch_size=16,
                      sequence_encoder=SASRecEncoder(max_len=4, n_blocks=1), **NEURAL),
]
IDS = [type(e).__name__ for e in ESTIMATORS]
# fitting SASRec or CREATE on a frame where no user has two events trains nothing without a
# word (the lead's part of issue 16): such frames are not generated for them
NEEDS_A_SEQUENCE = (SASRecRecommender, CREATERecommender)
COLUMNS = ("user_id", "item_id", "timestamp")
START = np.datetime64("2001-02-03T04:05:06", "s")
# times 0..6 as dates of these years: before 1677 and after 2262 int64 nanoseconds wrap around
FAR = np.array(["1000-01-01", "1600-06-01", "1900-01-01", "2000-01-01", "2200-01-01",
                "5000-01-01", "9999-12-31"], dtype="datetime64[s]")


@st.composite
def interactions(draw, min_rows=1):
    """A plain frame: int64 ids and int64 times with ties, any structure (one user, one item,
    one-event users, repeated rows)."""
    n_users = draw(st.integers(1, 5))
    n_items = draw(st.integers(1, 6))
    rows = draw(st.lists(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1),
                                   st.integers(0, 6)), min_size=min_rows, max_size=30))
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=np.int64)
    if draw(st.booleans()):
        # exact duplicate rows
        frame = pd.concat([frame, frame.iloc[:draw(st.integers(1, 3))]], ignore_index=True)
    return frame


@st.composite
def representations(draw, frame):
    """How to write the events of ``frame`` differently without changing their meaning."""
    bools = {"user": int(frame.user_id.max() <= 1), "item": int(frame.item_id.max() <= 1)}
    ids = ["int", "str", "float", "category", "object", "nullable"]
    return {
        "user": draw(st.sampled_from(ids + ["bool"] * bools["user"])),
        "item": draw(st.sampled_from(ids + ["bool"] * bools["item"])),
        "time": draw(st.sampled_from(["int", "float", "datetime", "far", "tz", "ms"])),
        "index": draw(st.sampled_from(["range", "shuffled", "duplicated", "text"])),
        "names": draw(st.sampled_from([COLUMNS, ("u", "i", "t")])),
        "extra": draw(st.booleans()),
        "polars": draw(st.booleans()),
        "seed": draw(st.integers(0, 1000)),
    }


def _ids(values, how, prefix):
    values = values.to_numpy()
    return {
        "int": lambda: values,
        # zero padding keeps the order of the integers
        "str": lambda: np.array([f"{prefix}{v:03d}" for v in values]),
        "float": lambda: values + 0.5,
        "category": lambda: pd.Categorical(values),
        "object": lambda: values.astype(object),
        "nullable": lambda: pd.array(values, dtype="Int64"),
        "bool": lambda: values.astype(bool),
    }[how]()


def _times(values, how):
    seconds = values.to_numpy().astype("timedelta64[s]")
    return {
        "int": lambda: values.to_numpy(),
        "float": lambda: values.to_numpy() * 1.5 - 0.25,
        "datetime": lambda: pd.Series(START + seconds).astype("datetime64[us]").to_numpy(),
        "far": lambda: FAR[values.to_numpy()],
        "tz": lambda: pd.Series(START + seconds).dt.tz_localize("UTC")
                        .dt.tz_convert("Asia/Tokyo").array,
        "ms": lambda: (START + seconds).astype("datetime64[ms]"),
    }[how]()


def render(frame, spec):
    """``frame`` (plain) written as ``spec`` says; the column ``row`` numbers its rows."""
    user, item, time = spec["names"]
    out = pd.DataFrame({user: _ids(frame.user_id, spec["user"], "u"),
                        item: _ids(frame.item_id, spec["item"], "i"),
                        time: _times(frame.timestamp, spec["time"])})
    out["row"] = np.arange(len(out))
    if spec["extra"]:
        out["note"] = ["x"] * len(out)
        out["rating"] = np.linspace(0, 1, len(out))
    rng = np.random.default_rng(spec["seed"])
    out.index = {
        "range": lambda: pd.RangeIndex(len(out)),
        "shuffled": lambda: pd.Index(rng.permutation(len(out)) * 3),
        "duplicated": lambda: pd.Index([7] * len(out)),
        "text": lambda: pd.Index([f"r{j}" for j in rng.permutation(len(out))]),
    }[spec["index"]]()
    return _to_polars(out) if spec["polars"] else out


def _to_polars(frame):
    try:
        return pl.from_pandas(frame)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        # polars cannot hold every pandas dtype (categoricals of numbers): stay in pandas
        return frame


def snapshot(frame):
    return copy.deepcopy(frame)


def assert_untouched(frame, before):
    if isinstance(frame, pl.DataFrame):
        assert frame.equals(before)
    else:
        pd.testing.assert_frame_equal(frame, before)
        assert list(frame.columns) == list(before.columns)


def configured(est, names):
    """``est`` reading the columns ``names``, every pipeline step included."""
    est = clone(est)
    steps = [step for _, step in est.steps] if isinstance(est, RecommenderPipeline) else [est]
    for step in steps:
        own = {p: n for p, n in zip(("user_col", "item_col", "time_col"), names)
               if p in step.get_params()}
        step.set_params(**own)
    return est


def outcome(call):
    """``("ok", result)`` or ``("error", exception type)``; other exceptions propagate."""
    try:
        return "ok", call()
    except (ValueError, TypeError) as exc:
        return "error", type(exc)


def plain_ids(recs, frame, spec):
    """Recommendations of a rendered frame with their ids mapped back to the plain ones."""
    shown = render(frame, dict(spec, polars=False, index="range"))
    user, item, _ = spec["names"]
    users = dict(zip(shown[user].astype(object), frame.user_id))
    items = dict(zip(shown[item].astype(object), frame.item_id))
    return pd.DataFrame({"user_id": recs[user].astype(object).map(users).astype(np.int64),
                         "item_id": recs[item].astype(object).map(items).astype(np.int64),
                         "score": recs["score"], "rank": recs["rank"]})


def assert_same(plain, rendered, compare=lambda a, b: a == b):
    assert plain[0] == rendered[0], (plain, rendered)
    if plain[0] == "error":
        assert plain[1] is rendered[1]
    else:
        assert compare(plain[1], rendered[1])


def _same_frames(a, b):
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_dtype=False)
    return True


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(data=st.data())
def test_equivalent_frames_give_identical_results(est, data):
    frame = data.draw(interactions())
    if isinstance(est, NEEDS_A_SEQUENCE) and frame.user_id.value_counts().max() < 2:
        frame = pd.concat([frame, frame.iloc[[0]].assign(timestamp=6)], ignore_index=True)
    spec = data.draw(representations(frame))
    shown = render(frame, spec)
    before = snapshot(shown)
    users = frame.user_id.unique()[:data.draw(st.integers(1, 3))]
    subset = frame[frame.user_id.isin(users)]
    shown_subset = render(subset, spec)

    plain_model, model = clone(est), configured(est, spec["names"])
    fitted = outcome(lambda: plain_model.fit(frame)), outcome(lambda: model.fit(shown))
    assert_same(*fitted, compare=lambda a, b: True)
    if fitted[0][0] == "ok":
        for histories, shown_histories in ((None, None), (subset, shown_subset)):
            plain = outcome(lambda: plain_model.recommend(histories, k=3))
            rendered = outcome(lambda: model.recommend(shown_histories, k=3))
            if rendered[0] == "ok":
                rendered = "ok", plain_ids(rendered[1], frame, spec)
            assert_same(plain, rendered, _same_frames)
        assert_same(outcome(lambda: plain_model.score(frame)), outcome(lambda: model.score(shown)))
    assert_untouched(shown, before)


def _kwargs(names):
    return dict(zip(("user_col", "item_col", "time_col"), names))


SPLITTERS = [
    lambda names: GlobalTemporalSplit(quantile=0.5, min_user_interactions=1, **_kwargs(names)),
    lambda names: GlobalTemporalSplit(quantile=[0.3, 0.7], min_user_interactions=2,
                                      warm_users_only=False, **_kwargs(names)),
    lambda names: LeaveLastOutSplit(min_user_interactions=1, **_kwargs(names)),
]


def _rows(frames):
    return [f["row"].tolist() for f in frames]


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.data())
def test_splitters_and_filters_on_equivalent_frames(data):
    frame = data.draw(interactions())
    spec = data.draw(representations(frame))
    shown = render(frame, spec)
    before = snapshot(shown)
    plain = frame.assign(row=np.arange(len(frame)))
    names = spec["names"]
    for make in SPLITTERS:
        positions = [outcome(lambda: [pair for pair in make(COLUMNS).split(plain)]),
                     outcome(lambda: [pair for pair in make(names).split(shown)])]
        assert_same(*positions, compare=lambda a, b: all(
            np.array_equal(x, y) for p, q in zip(a, b) for x, y in zip(p, q)) and len(a) == len(b))
    assert_same(outcome(lambda: _rows(split_history_target(plain))),
                outcome(lambda: _rows(split_history_target(shown, *names))))
    assert_same(outcome(lambda: _rows(global_temporal_split(
        plain, 0.6, 0.6, min_user_interactions=1))),
        outcome(lambda: _rows(global_temporal_split(shown, 0.6, 0.6, min_user_interactions=1,
                                                    **_kwargs(names)))))
    for step in (MinInteractionsFilter(2, 2), DropConsecutiveRepeats()):
        own = {k: v for k, v in _kwargs(names).items() if k in step.get_params()}
        assert_same(outcome(lambda: clone(step).fit_transform(plain)["row"].tolist()),
                    outcome(lambda: clone(step).set_params(**own).fit_transform(shown)["row"]
                            .tolist()))
    assert_untouched(shown, before)


def _with_missing(frame, col, rows):
    out = frame.copy()
    if pd.api.types.is_datetime64_any_dtype(out[col]):
        out[col] = out[col].astype(object)
        out.iloc[rows, out.columns.get_loc(col)] = pd.NaT
    else:
        out[col] = out[col].astype(object)
        out.iloc[rows, out.columns.get_loc(col)] = None
    return out


FAULTS = {
    "missing user": lambda f, n, rows: (_with_missing(f, n[0], rows), ValueError,
                                        rf"\['{n[0]}'\] has {len(rows)} missing value"),
    "missing item": lambda f, n, rows: (_with_missing(f, n[1], rows), ValueError,
                                        rf"\['{n[1]}'\] has {len(rows)} missing value"),
    "missing time": lambda f, n, rows: (_with_missing(f, n[2], rows), ValueError,
                                        rf"\['{n[2]}'\] has {len(rows)} missing value"),
    "text times": lambda f, n, rows: (f.astype({n[2]: str}), TypeError,
                                      rf"\['{n[2]}'\] must be numeric or datetime64"),
    "booleans beside numbers": lambda f, n, rows: (
        f.assign(**{n[0]: np.array([True] + list(range(len(f) - 1)), dtype=object)}),
        TypeError, rf"\['{n[0]}'\] mixes booleans and numbers"),
    "unhashable ids": lambda f, n, rows: (f.assign(**{n[1]: [[1, 2]] * len(f)}), TypeError,
                                          rf"\['{n[1]}'\] holds unhashable ids"),
    "no rows": lambda f, n, rows: (f.iloc[:0], ValueError, r" is empty"),
    "no time column": lambda f, n, rows: (f.drop(columns=n[2]), ValueError,
                                          rf" is missing column\(s\) \['{n[2]}'\]"),
    "not a frame": lambda f, n, rows: (f.to_numpy(), TypeError,
                                       r" must be a pandas \(or polars\) DataFrame"),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(data=st.data())
def test_broken_frames_give_named_errors(data):
    frame = data.draw(interactions(min_rows=2))
    frame = pd.concat([frame, frame.iloc[[0]].assign(timestamp=6)], ignore_index=True)
    spec = data.draw(representations(frame))
    fault = data.draw(st.sampled_from(sorted(FAULTS)))
    rows = sorted(data.draw(st.sets(st.integers(0, len(frame) - 1), min_size=1, max_size=3)))
    names = spec["names"]
    bad, kind, message = FAULTS[fault](render(frame, dict(spec, polars=False)), names, rows)
    if spec["polars"] and fault not in ("not a frame", "booleans beside numbers"):
        bad = _to_polars(bad)
    before = snapshot(bad)
    models = {type(e).__name__: configured(e, names) for e in ESTIMATORS}
    for est in models.values():
        with pytest.raises(kind, match=rf"^X{message}"):
            est.fit(bad)
    fitted = configured(PopularRecommender(), names).fit(render(frame, spec))
    with pytest.raises(kind, match=rf"^histories{message}"):
        fitted.recommend(bad)
    with pytest.raises(kind, match=rf"^X{message}"):
        fitted.score(bad)
    for make in SPLITTERS:
        with pytest.raises(kind, match=rf"^X{message}"):
            next(make(names).split(bad))
    with pytest.raises(kind, match=rf"^X{message}"):
        split_history_target(bad, *names)
    if not isinstance(bad, np.ndarray):
        assert_untouched(bad, before)

