import gzip
import hashlib
import io
import json
import re
import time
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skcreate.data.datasets import (
    get_data_home,
    list_datasets,
    load_dataset,
    load_interactions,
    load_item_metadata,
    make_interactions,
)
from skcreate.data.datasets._download import DATASETS, ChecksumError, dataset_source, fetch


# --------------------------------------------------------------------------- data home


def test_data_home_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SKCREATE_DATA", raising=False)
    assert get_data_home() == tmp_path / "home" / "skcreate_data"

    monkeypatch.setenv("SKCREATE_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert get_data_home(str(tmp_path / "arg")) == tmp_path / "arg"

    monkeypatch.setenv("SKCREATE_DATA", "")
    assert get_data_home() == tmp_path / "home" / "skcreate_data"
    # resolving a location never creates it
    assert not (tmp_path / "home").exists() and not (tmp_path / "env").exists()


# --------------------------------------------------------------------------- load_interactions


@pytest.fixture
def events():
    return pd.DataFrame({
        "user_id": [3, 1, 3, 2],
        "item_id": ["b", "a", "c", "a"],
        "timestamp": [30, 10, 20, 10],
        "rating": [4.5, 3.0, 5.0, 1.0],
    })


def _write(frame, path):
    if path.name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


@pytest.mark.parametrize("name", ["events.csv", "events.csv.gz", "events.parquet", "EV.CSV.GZ"])
def test_load_interactions_formats(tmp_path, events, name):
    _write(events, tmp_path / name)
    loaded = load_interactions(tmp_path / name)
    assert list(loaded.columns) == ["user_id", "item_id", "timestamp", "rating"]
    assert loaded["user_id"].dtype == np.int64
    assert pd.api.types.is_string_dtype(loaded["item_id"])
    pd.testing.assert_frame_equal(loaded, events, check_dtype=False)


def test_load_interactions_column_mapping(tmp_path, events):
    source = events.rename(columns={"user_id": "uid", "item_id": "asin", "timestamp": "ts"})
    source.insert(0, "note", ["x", "y", "z", "w"])
    _write(source, tmp_path / "events.csv")
    mapping = {"uid": "user_id", "asin": "item_id", "ts": "timestamp"}
    loaded = load_interactions(str(tmp_path / "events.csv"), columns=mapping)
    assert list(loaded.columns) == ["user_id", "item_id", "timestamp", "note", "rating"]
    pd.testing.assert_frame_equal(loaded[events.columns], events, check_dtype=False)

    # user_col/item_col/time_col name the columns instead of renaming them first
    by_args = load_interactions(tmp_path / "events.csv", user_col="uid", item_col="asin",
                                time_col="ts")
    pd.testing.assert_frame_equal(by_args, loaded)


def test_load_interactions_keeps_id_text(tmp_path):
    pd.DataFrame({"user_id": ["007", "007", "010"], "item_id": ["1", "2", "3"],
                  "timestamp": [1, 2, 3]}).to_csv(tmp_path / "e.csv", index=False)
    loaded = load_interactions(tmp_path / "e.csv")
    assert loaded["user_id"].tolist() == ["007", "007", "010"]
    assert loaded["item_id"].tolist() == [1, 2, 3]


def test_load_interactions_parses_iso_times(tmp_path):
    times = pd.to_datetime(["2020-01-01 00:00:00", "2020-01-02 10:00:00"])
    frame = pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "timestamp": times})
    frame.to_csv(tmp_path / "e.csv", index=False)
    loaded = load_interactions(tmp_path / "e.csv")
    assert pd.api.types.is_datetime64_any_dtype(loaded["timestamp"])
    assert (loaded["timestamp"].to_numpy() == frame["timestamp"].to_numpy()).all()


@given(st.lists(st.text("abc0123456789-", min_size=1, max_size=6), min_size=1, max_size=20))
@settings(max_examples=40, deadline=None)
def test_load_interactions_ids_round_trip(tmp_path_factory, ids):
    path = tmp_path_factory.mktemp("ids") / "e.csv"
    pd.DataFrame({"user_id": 1, "item_id": ids, "timestamp": 0}).to_csv(path, index=False)
    loaded = load_interactions(path)["item_id"].tolist()
    # ids become ints only when every id is an integer written without leading zeros
    if all(re.fullmatch(r"0|-?[1-9][0-9]*", i) for i in ids):
        assert loaded == [int(i) for i in ids]
    else:
        assert loaded == ids


def test_load_interactions_errors(tmp_path, events):
    with pytest.raises(ValueError, match=r"unsupported suffix '\.txt'"):
        load_interactions(tmp_path / "events.txt")
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        load_interactions(tmp_path / "nowhere.csv")

    _write(events.drop(columns="timestamp"), tmp_path / "no_time.csv")
    with pytest.raises(ValueError, match=r"no_time\.csv.*missing column.*'timestamp'"):
        load_interactions(tmp_path / "no_time.csv")
    with pytest.raises(ValueError, match=r"\['uid'\] that the file does not have"):
        load_interactions(tmp_path / "no_time.csv", columns={"uid": "user_id"})
    with pytest.raises(TypeError, match="mapping"):
        load_interactions(tmp_path / "no_time.csv", columns=["user_id"])

    _write(events, tmp_path / "events.csv")
    with pytest.raises(ValueError, match="several columns"):
        load_interactions(tmp_path / "events.csv", columns={"rating": "user_id"})


# --------------------------------------------------------------------------- load_dataset


def _counts(frame):
    return len(frame), frame["user_id"].nunique(), frame["item_id"].nunique()


def test_load_dataset_movielens_100k(shared_data, monkeypatch):
    frame = load_dataset("movielens-100k", data_home=shared_data)
    assert _counts(frame) == (100_000, 943, 1_682)
    assert list(frame.columns) == ["user_id", "item_id", "timestamp", "rating"]
    assert frame["user_id"].dtype == np.int64 and frame["timestamp"].dtype == np.int64
    monkeypatch.setenv("SKCREATE_DATA", str(shared_data))
    pd.testing.assert_frame_equal(load_dataset("ML-100K"), frame)


def test_load_dataset_amazon_beauty(shared_data):
    # downloaded and converted the first time when the data directory lacks it
    frame = load_dataset("beauty", data_home=shared_data, download=True)
    assert _counts(frame) == (198_502, 22_363, 12_101)
    assert frame.loc[0, ["user_id", "item_id", "timestamp"]].tolist() == \
        ["A281NPSIMI1C2R", "B0000535UX", 1023840000]


def test_list_datasets_and_errors(tmp_path):
    assert list_datasets() == ["movielens-100k", "movielens-1m", "amazon-beauty",
                               "amazon-sports"]
    with pytest.raises(ValueError, match="movielens-1m.*amazon-sports"):
        load_dataset("netflix")
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("sports", data_home=tmp_path)
    message = str(info.value)
    for part in (str(tmp_path / "amazon-sports.csv.gz"), "download=True", "SKCREATE_DATA"):
        assert part in message
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- download


# (user, item, rating, timestamp) in source order; user 2's two events tie on time
_RAW = [(2, 20, 4, 300), (1, 10, 5, 100), (2, 21, 3, 300), (1, 11, 1, 200), (3, 10, 2, 100)]
_EXPECTED = pd.DataFrame(
    [(1, 10, 100, 5), (3, 10, 100, 2), (1, 11, 200, 1), (2, 20, 300, 4), (2, 21, 300, 3)],
    columns=["user_id", "item_id", "timestamp", "rating"],
)


# u.item of ml-100k: Latin-1, id|title|release|video release|IMDb URL|19 genre flags
_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
           "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
           "Romance", "Sci-Fi", "Thriller", "War", "Western"]
_ITEMS = {10: ("Café Society (1995)", ["Action", "Sci-Fi"]), 11: ("unknown", ["unknown"]),
          20: ("Heat (1995)", ["Crime"]), 21: ("Toy Story (1995)", ["Animation", "Comedy"])}


def _u_item():
    lines = []
    for item, (title, genres) in _ITEMS.items():
        flags = "|".join("1" if g in genres else "0" for g in _GENRES)
        lines.append(f"{item}|{title}|01-Jan-1995||http://example.org/{item}|{flags}\n")
    return "".join(lines).encode("latin-1")


def _zip_archive(member, sep):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, "".join(sep.join(map(str, row)) + "\n" for row in _RAW))
        if member.startswith("ml-100k/"):
            archive.writestr("ml-100k/u.item", _u_item())
            archive.writestr("ml-100k/u.genre", "".join(
                f"{g}|{i}\n" for i, g in enumerate(_GENRES)) + "\n")
    return buffer.getvalue()


def _amazon_archive():
    lines = [json.dumps({"reviewerID": f"U{u}", "asin": f"B{i:03d}", "overall": float(r),
                         "unixReviewTime": t, "reviewText": "ok"}) for u, i, r, t in _RAW]
    return gzip.compress("\n".join(lines).encode())


def _amazon_expected():
    expected = _EXPECTED.copy()
    expected["user_id"] = "U" + expected["user_id"].astype(str)
    expected["item_id"] = expected["item_id"].map("B{:03d}".format)
    return expected


@pytest.mark.parametrize("name, alias, filename, archive, expected", [
    ("movielens-100k", "ml-100k", "ml-100k.zip",
     lambda: _zip_archive("ml-100k/u.data", "\t"), lambda: _EXPECTED),
    ("movielens-1m", "ml-1m", "ml-1m.zip",
     lambda: _zip_archive("ml-1m/ratings.dat", "::"), lambda: _EXPECTED),
    ("amazon-beauty", "beauty", "reviews_Beauty_5.json.gz", _amazon_archive, _amazon_expected),
], ids=["ml-100k", "ml-1m", "beauty"])
def test_download_verifies_and_caches(server, tmp_path, monkeypatch, name, alias, filename,
                                      archive, expected):
    base_url, requests, root = server
    payload = archive()
    (root / filename).write_bytes(payload)
    spec = DATASETS[name]
    monkeypatch.setitem(spec, "url", f"{base_url}/{filename}")
    if spec["checksum"] is not None:
        monkeypatch.setitem(spec, "checksum", hashlib.md5(payload).hexdigest())
    home = tmp_path / "home"

    if spec["checksum"] is None:
        with pytest.warns(UserWarning, match="not verified"):
            frame = load_dataset(alias, data_home=home, download=True)
        record = json.loads((home / "raw" / f"{filename}.checksum.json").read_text())
        assert record["sha256"] == hashlib.sha256(payload).hexdigest()
    else:
        frame = load_dataset(alias, data_home=home, download=True)
    pd.testing.assert_frame_equal(frame, expected(), check_dtype=False)
    assert (home / spec["filename"]).exists() and len(requests) == 1

    # the processed file is used as is; without it the verified raw archive is reused
    pd.testing.assert_frame_equal(load_dataset(name, data_home=home), frame)
    (home / spec["filename"]).unlink()
    pd.testing.assert_frame_equal(load_dataset(name, data_home=home, download=True), frame)
    assert len(requests) == 1


def test_download_writes_item_metadata(server, tmp_path, monkeypatch):
    base_url, requests, root = server
    payload = _zip_archive("ml-100k/u.data", "\t")
    (root / "ml-100k.zip").write_bytes(payload)
    # the environment overrides the registry: how the CLI test reaches the local server
    monkeypatch.setenv("SKCREATE_MOVIELENS_100K_URL", f"{base_url}/ml-100k.zip")
    monkeypatch.setenv("SKCREATE_MOVIELENS_100K_CHECKSUM", hashlib.md5(payload).hexdigest())
    assert dataset_source("movielens-100k") == (f"{base_url}/ml-100k.zip",
                                                hashlib.md5(payload).hexdigest())
    home = tmp_path / "home"
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_item_metadata("ml-100k", data_home=home)
    load_dataset("ml-100k", data_home=home, download=True)
    items = load_item_metadata("movielens-100k", data_home=home)
    assert items.to_dict("list") == {
        "item_id": [10, 11, 20, 21],
        "title": ["Café Society (1995)", "unknown", "Heat (1995)", "Toy Story (1995)"],
        "genres": ["Action|Sci-Fi", "unknown", "Crime", "Animation|Comedy"]}
    # an older cache without the metadata file: made again from the cached archive
    (home / "ml-100k-items.csv.gz").unlink()
    pd.testing.assert_frame_equal(load_item_metadata("ml-100k", data_home=home, download=True),
                                  items)
    assert len(requests) == 1
    with pytest.raises(ValueError, match="no item metadata.*movielens-100k"):
        load_item_metadata("beauty", data_home=home)


def test_load_item_metadata_shared(shared_data):
    items = load_item_metadata("ml-100k", data_home=shared_data)
    assert len(items) == 1_682 and list(items.columns) == ["item_id", "title", "genres"]
    assert items.loc[items.item_id == 50, "title"].item() == "Star Wars (1977)"


def test_download_wrong_checksum_caches_nothing(server, tmp_path, monkeypatch):
    base_url, requests, root = server
    payload = _zip_archive("ml-100k/u.data", "\t")
    (root / "ml-100k.zip").write_bytes(payload)
    monkeypatch.setitem(DATASETS["movielens-100k"], "url", f"{base_url}/ml-100k.zip")
    monkeypatch.setitem(DATASETS["movielens-100k"], "checksum", "0" * 32)
    home = tmp_path / "home"
    with pytest.raises(ChecksumError) as info:
        load_dataset("ml-100k", data_home=home, download=True)
    assert "0" * 32 in str(info.value) and hashlib.md5(payload).hexdigest() in str(info.value)
    assert requests == ["/ml-100k.zip"]
    assert [p for p in home.rglob("*") if p.is_file()] == []


def test_fetch_rechecks_cache(server, tmp_path):
    base_url, requests, root = server
    (root / "blob.bin").write_bytes(b"payload")
    md5 = hashlib.md5(b"payload").hexdigest()
    sha256 = hashlib.sha256(b"payload").hexdigest()
    path = fetch(f"{base_url}/blob.bin", tmp_path / "cache", checksum=md5)
    assert path.read_bytes() == b"payload"
    assert fetch(f"{base_url}/blob.bin", tmp_path / "cache", checksum=md5.upper()) == path
    assert len(requests) == 1

    path.write_bytes(b"corrupted")
    with pytest.warns(UserWarning, match="does not match"):
        fetch(f"{base_url}/blob.bin", tmp_path / "cache", checksum=sha256, algorithm="sha256")
    assert path.read_bytes() == b"payload" and len(requests) == 2

    with pytest.raises(OSError, match="missing.bin"):
        fetch(f"{base_url}/missing.bin", tmp_path / "cache")
    with pytest.raises(ValueError, match="algorithm"):
        fetch(f"{base_url}/blob.bin", tmp_path / "cache", algorithm="sha1")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["blob.bin"]


# --------------------------------------------------------------------------- make_interactions


def test_make_interactions_shape_and_determinism():
    X = make_interactions(n_users=300, n_items=100, random_state=0)
    assert list(X.columns) == ["user_id", "item_id", "timestamp"]
    assert all(X[c].dtype == np.int64 for c in X.columns)
    assert X["user_id"].nunique() == 300 and X["item_id"].between(0, 99).all()
    pd.testing.assert_frame_equal(X, make_interactions(n_users=300, n_items=100, random_state=0))
    pd.testing.assert_frame_equal(
        make_interactions(n_users=300, n_items=100, random_state=np.random.default_rng(5)),
        make_interactions(n_users=300, n_items=100, random_state=np.random.default_rng(5)),
    )
    pd.testing.assert_frame_equal(
        make_interactions(n_users=300, n_items=100, random_state=np.random.RandomState(5)),
        make_interactions(n_users=300, n_items=100, random_state=5),
    )
    assert not X.equals(make_interactions(n_users=300, n_items=100, random_state=1))


def _check_invariants(X, n_users, n_items, min_length, start, duration):
    assert X["user_id"].nunique() == n_users
    assert X.groupby("user_id").size().min() >= min_length
    assert X["item_id"].between(0, n_items - 1).all()
    assert not X.duplicated(["user_id", "item_id"]).any()
    assert X["timestamp"].between(start, start + duration - 1).all()
    # sorted by timestamp then user, and strictly increasing within each user
    assert (np.lexsort((X["user_id"], X["timestamp"])) == np.arange(len(X))).all()
    assert (X.groupby("user_id")["timestamp"].diff().dropna() > 0).all()


def test_make_interactions_structure():
    X = make_interactions(n_users=2000, n_items=500, random_state=0)
    _check_invariants(X, 2000, 500, 3, 1_577_836_800, 365 * 86_400)
    # a global temporal split at the 0.8 quantile leaves many warm test users
    cut = X["timestamp"].quantile(0.8)
    first, last = X.groupby("user_id")["timestamp"].agg(["min", "max"]).T.to_numpy()
    assert ((first <= cut) & (last > cut)).sum() > 200


@given(
    n_users=st.integers(1, 30), n_items=st.integers(6, 40), n_communities=st.integers(1, 5),
    min_length=st.integers(1, 5), extra_length=st.floats(0, 10), n_successors=st.integers(1, 5),
    noise=st.floats(0, 1), seed=st.integers(0, 2**31),
)
@settings(max_examples=60, deadline=None)
def test_make_interactions_invariants(n_users, n_items, n_communities, min_length, extra_length,
                                      n_successors, noise, seed):
    X = make_interactions(n_users, n_items, n_communities, min_length + extra_length,
                          min_length=min_length, n_successors=n_successors, noise=noise,
                          start_time=0, duration=1000, random_state=seed)
    _check_invariants(X, n_users, n_items, min_length, 0, 1000)


def test_make_interactions_order_matters():
    X = make_interactions(n_users=1000, n_items=500, random_state=42)
    X = X.sort_values(["user_id", "timestamp"], kind="stable")
    is_last = ~X["user_id"].duplicated(keep="last").to_numpy()
    train, test = X[~is_last], X[is_last].set_index("user_id")["item_id"]
    context = train.groupby("user_id")["item_id"].last()

    # "last item -> 10 most frequent next items", learnt on the training part of every sequence
    previous = train.groupby("user_id")["item_id"].shift()
    pairs = pd.DataFrame({"prev": previous, "next": train["item_id"]}).dropna().astype(int)
    counts = pairs.value_counts().reset_index(name="n")
    counts = counts.sort_values(["prev", "n", "next"], ascending=[True, False, True])
    top_next = counts.groupby("prev").head(10).groupby("prev")["next"].agg(set)
    markov_hits = [target in top_next.get(context[user], set()) for user, target in test.items()]

    popular = set(train["item_id"].value_counts().index[:10])
    popularity_hits = [target in popular for target in test]
    assert np.mean(markov_hits) >= 2 * np.mean(popularity_hits) > 0


def test_make_interactions_is_fast():
    start = time.perf_counter()
    X = make_interactions(n_users=10_000, n_items=2_000, mean_length=20, random_state=0)
    assert time.perf_counter() - start < 3.0
    assert 150_000 < len(X) < 250_000


@pytest.mark.parametrize("kwargs, name", [
    ({"n_users": 0}, "n_users"),
    ({"n_items": 2.5}, "n_items"),
    ({"n_items": 2}, "n_items"),
    ({"n_communities": 0}, "n_communities"),
    ({"mean_length": 2}, "mean_length"),
    ({"min_length": 0}, "min_length"),
    ({"noise": 1.5}, "noise"),
    ({"popularity_exponent": -1}, "popularity_exponent"),
    ({"n_successors": 10, "n_items": 10}, "n_successors"),
    ({"items_per_community": 3}, "items_per_community"),
    ({"items_per_community": 501}, "items_per_community"),
    ({"duration": 10, "mean_length": 50}, "duration"),
    ({"n_users": True}, "n_users"),
])
def test_make_interactions_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_interactions(**kwargs)


@pytest.mark.parametrize("params, match", [
    ({"mean_length": float("inf")}, "mean_length must be a finite number >= 3, got inf"),
    ({"popularity_exponent": float("inf")}, "popularity_exponent must be a finite number"),
    ({"popularity_exponent": 1000.0}, r"popularity_exponent=1000 is too large for n_items=20: "
                                      r"only 2 items"),
])
def test_make_interactions_rejects_what_numpy_cannot_sample(params, match):
    # these gave raw numpy errors ("p <= 0, p > 1 or p contains NaNs") that named no parameter
    with pytest.raises(ValueError, match=match):
        make_interactions(n_users=5, n_items=20, random_state=0, **params)


def test_load_interactions_rejects_one_column_for_two_roles(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("u,i,t\n1,2,3\n")
    # used to fail with a raw AttributeError from the id parsing
    with pytest.raises(ValueError, match="user_col, item_col and time_col must name different "
                                         "columns, got user_col='u', item_col='u'"):
        load_interactions(path, "u", "u", "t")
