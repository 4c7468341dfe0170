"""Exports (ONNX graph + sidecar) and the torch-free recommender that serves them."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

import skcreate
from skcreate.apps.cli import main
from skcreate.data.datasets import make_interactions
from skcreate.nn.scoring import solve_spd
from skcreate.serving import ExportError, load
from skcreate.serving.format import decode_ids, encode_ids, sidecar_path

TRAIN = make_interactions(n_users=120, n_items=50, random_state=0)


def _histories():
    """Fitted users (some) and new ones, an unknown item among them."""
    new = make_interactions(n_users=30, n_items=50, random_state=1)
    new["user_id"] += 10_000
    return pd.concat([TRAIN[TRAIN.user_id < 25], new,
                      pd.DataFrame({"user_id": [10_000], "item_id": [999],
                                    "timestamp": [10**9]})], ignore_index=True)


MODELS = {
    "sasrec": lambda: skcreate.SASRecRecommender(n_factors=16, max_len=8, epochs=2,
                                                 random_state=0),
    "bert4rec": lambda: skcreate.CREATERecommender(
        n_factors=16, sequence_encoder="bert4rec", epochs=1, warmup_epochs=1,
        random_state=0).set_params(sequence_encoder__max_len=8),
    "create": lambda: skcreate.CREATERecommender(n_factors=16, epochs=1, warmup_epochs=1,
                                                 random_state=0),
    "lightgcn": lambda: skcreate.LightGCNRecommender(n_factors=16, epochs=2, random_state=0),
    "ultragcn": lambda: skcreate.UltraGCNRecommender(n_factors=16, epochs=2, random_state=0),
    "als": lambda: skcreate.ALSRecommender(n_factors=8, iterations=3, alpha=3.0,
                                           random_state=0),
    "bpr": lambda: skcreate.BPRRecommender(n_factors=8, iterations=5, random_state=0),
    "puresvd": lambda: skcreate.PureSVDRecommender(n_factors=6, random_state=0),
    "popular": lambda: skcreate.PopularRecommender(),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (fitted estimator, its export's path)."""
    folder = tmp_path_factory.mktemp("exports")
    out = {}
    for name, make in MODELS.items():
        est = make().fit(TRAIN)
        est.export(folder / f"{name}.onnx")
        out[name] = est, folder / f"{name}.onnx"
    return out


def assert_same_recommendations(expected, got, tol=1e-4):
    """Same users, ranks and scores; items equal except between tied scores."""
    assert list(got.columns) == list(expected.columns)
    assert got.index.equals(expected.index)
    for column in ("user_id", "rank"):
        np.testing.assert_array_equal(got[column].to_numpy(), expected[column].to_numpy())
    scores = expected["score"].to_numpy()
    np.testing.assert_allclose(got["score"].to_numpy(), scores, rtol=tol, atol=tol)
    differ = np.flatnonzero(got["item_id"].to_numpy() != expected["item_id"].to_numpy())
    for row in differ:
        same_user = expected["user_id"].to_numpy() == expected["user_id"].iloc[row]
        others = np.delete(scores[same_user], np.flatnonzero(np.flatnonzero(same_user) == row))
        last = scores[same_user][-1]
        # a tie inside the list, or with an item just past the k-th
        assert np.isclose(others, scores[row], rtol=tol, atol=tol).any() \
            or np.isclose(last, scores[row], rtol=tol, atol=tol), row


@pytest.mark.parametrize("name", MODELS)
def test_export_serves_the_estimators_recommendations(exported, name):
    est, path = exported[name]
    histories = _histories()
    with pytest.warns(UserWarning, match="unseen at fit"):
        expected = est.recommend(histories, k=7)
    with pytest.warns(UserWarning, match="unseen at fit"):
        got = load(path).recommend(histories, k=7)
    assert_same_recommendations(expected, got)


@pytest.mark.parametrize("name", ["sasrec", "lightgcn", "als"])
def test_dynamic_batch_length_and_k(exported, name):
    est, path = exported[name]
    model = load(path)
    # one user, one event; then 1,000 users, some with histories past max_len (8)
    one = TRAIN[TRAIN.user_id == 3].head(1)
    assert_same_recommendations(est.recommend(one, k=1), model.recommend(one, k=1))
    many = make_interactions(n_users=1000, n_items=50, random_state=2)
    assert many.groupby("user_id").size().max() > 8
    assert_same_recommendations(est.recommend(many, k=12), model.recommend(many, k=12))
    # k past the catalogue: the catalogue less the seen items
    whole = model.recommend(one, k=500)
    assert len(whole) == est.n_items_ - 1 and whole["rank"].max() == est.n_items_ - 1


def test_fallback_and_contract(exported):
    est, path = exported["sasrec"]
    model = load(path)
    stranger = pd.DataFrame({"user_id": ["x"], "item_id": [999], "timestamp": [0]})
    with pytest.warns(UserWarning) as record:
        got = model.recommend(stranger, k=3)
    assert [str(w.message).split(";")[0] for w in record] == [
        "1 interaction(s) in histories have items unseen at fit",
        "1 user(s) have no history item from the fitted catalogue"]
    popularity = pd.Series(est.item_popularity_, index=est.item_ids_)
    assert got["score"].tolist() == sorted(est.item_popularity_, reverse=True)[:3]
    assert got["score"].tolist() == popularity[got["item_id"]].tolist()
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        model.recommend(TRAIN.head(3), k=0)
    with pytest.raises(ValueError, match="pass the users' histories"):
        model.recommend(None)
    with pytest.raises(ValueError, match="'item_id'"):
        model.recommend(TRAIN.drop(columns="item_id"))
    chunks = list(model.iter_recommend(TRAIN, k=2, chunk_size=50))
    assert len(chunks) == 3
    pd.testing.assert_frame_equal(pd.concat(chunks), model.recommend(TRAIN, k=2))


def test_string_and_categorical_ids_round_trip(tmp_path):
    df = TRAIN.assign(user_id="u\x00" + TRAIN.user_id.astype(str),
                      item_id=pd.Categorical("i\u00e9 " + TRAIN.item_id.astype(str)))
    est = skcreate.PureSVDRecommender(n_factors=4, random_state=0).fit(df)
    est.export(tmp_path / "m.onnx")
    model = load(tmp_path / "m.onnx")
    assert model.item_ids_.equals(est.item_ids_)
    assert_same_recommendations(est.recommend(df, k=5), model.recommend(df, k=5))


@settings(max_examples=40, deadline=None)
@given(st.one_of(
    st.lists(st.text(), unique=True),
    st.lists(st.integers(-2**63, 2**63 - 1), unique=True),
    st.lists(st.floats(allow_nan=False), unique=True)))
def test_ids_encode_exactly(values):
    index = pd.Index(values)
    back = decode_ids(json.loads(json.dumps(encode_ids(index, "ids"))))
    assert back.equals(index) and back.dtype == index.dtype
    assert [type(v) for v in back] == [type(v) for v in index]


def test_mixed_ids_refused():
    with pytest.raises(ValueError, match="item ids .* cannot be exported"):
        encode_ids(pd.Index([1, "a"], dtype=object), "item ids")


def test_damaged_or_mismatched_export_refused(exported, tmp_path):
    _, path = exported["puresvd"]
    _, other = exported["als"]
    onnx_bytes, sidecar = path.read_bytes(), json.loads(open(sidecar_path(path)).read())
    target = tmp_path / "m.onnx"
    # a flipped byte
    damaged = bytearray(onnx_bytes)
    damaged[len(damaged) // 2] ^= 1
    target.write_bytes(bytes(damaged))
    open(sidecar_path(target), "w").write(json.dumps(sidecar))
    with pytest.raises(ExportError, match="does not match its sidecar"):
        load(target)
    # another export's graph beside this sidecar
    target.write_bytes(other.read_bytes())
    with pytest.raises(ExportError, match="does not match its sidecar"):
        load(target)
    target.write_bytes(onnx_bytes)
    for broken, message in [("{", "not JSON"), (json.dumps({"format": "x"}), "format is not"),
                            (json.dumps({**sidecar, "n_items": "7"}), "'n_items'"),
                            (json.dumps({**sidecar, "format_version": 99}), "upgrade skcreate"),
                            (json.dumps({**sidecar, "inputs": ["history"]}), "takes inputs")]:
        open(sidecar_path(target), "w").write(broken)
        with pytest.raises(ExportError, match=message):
            load(target)
    os.remove(sidecar_path(target))
    with pytest.raises(FileNotFoundError, match="has no sidecar"):
        load(target)
    exported["puresvd"][0].save(tmp_path / "model.skc")
    with pytest.raises(ExportError, match="is a zip archive"):
        load(tmp_path / "model.skc")


def test_refusals(tmp_path):
    with pytest.raises(NotFittedError):
        skcreate.PureSVDRecommender().export(tmp_path / "m.onnx")
    est = skcreate.RandomRecommender(random_state=0).fit(TRAIN)
    with pytest.raises(TypeError, match="random draws"):
        est.export(tmp_path / "m.onnx")
    est = skcreate.PopularRecommender().fit(TRAIN)
    with pytest.raises(FileNotFoundError, match="the folder .* does not exist"):
        est.export(tmp_path / "nowhere" / "m.onnx")
    with pytest.raises(ValueError, match="format must be one of"):
        est.export(tmp_path / "m.onnx", format="pmml")
    est = skcreate.PopularRecommender(user_col=("a", "b")).fit(
        TRAIN.rename(columns={"user_id": ("a", "b")}))
    with pytest.raises(ValueError, match="must be str or int"):
        est.export(tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_serving_never_imports_torch(exported):
    _, path = exported["sasrec"]
    code = f"""
import sys, warnings
import pandas as pd
from skcreate.serving import load
model = load({str(path)!r})
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    recs = model.recommend(pd.DataFrame({{"user_id": [1, 1], "item_id": [3, 4],
                                          "timestamp": [1, 2]}}), k=5)
assert len(recs) == 5, recs
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn", "implicit"))
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_export(tmp_path, capsys):
    data = tmp_path / "d.csv"
    TRAIN.to_csv(data, index=False)
    assert main(["fit", str(data), "--model", "als", "--set", "n_factors=4", "--set",
                 "iterations=2", "--out", str(tmp_path / "m.skc")]) == 0
    assert main(["export", str(tmp_path / "m.skc"), str(tmp_path / "m.onnx")]) == 0
    assert "exported to" in capsys.readouterr().err
    est = skcreate.load(tmp_path / "m.skc")
    assert_same_recommendations(est.recommend(TRAIN, k=4),
                                load(tmp_path / "m.onnx").recommend(TRAIN, k=4))
    assert main(["export", str(tmp_path / "none.skc"), str(tmp_path / "x.onnx")]) == 1
    assert "No model file" in capsys.readouterr().err


def test_solve_spd_solves():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(5, 9, 9, generator=generator, dtype=torch.float64)
    matrix = a @ a.transpose(1, 2) + 0.1 * torch.eye(9, dtype=torch.float64)
    rhs = torch.randn(5, 9, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(solve_spd(matrix, rhs), torch.linalg.solve(matrix, rhs))


def test_export_leaves_the_estimator_unchanged(exported, tmp_path):
    est, _ = exported["create"]
    before = est.recommend(TRAIN, k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.export(tmp_path / "again.onnx")
    pd.testing.assert_frame_equal(est.recommend(TRAIN, k=5), before)
    assert not est.module_.training


def test_export_serves_the_fitted_model_after_set_params(tmp_path):
    est = skcreate.ALSRecommender(n_factors=8, iterations=3, random_state=0).fit(TRAIN)
    est.set_params(regularization=50.0, alpha=9.0, filter_seen=False)
    est.export(tmp_path / "m.onnx")
    assert_same_recommendations(est.recommend(TRAIN, k=5),
                                load(tmp_path / "m.onnx").recommend(TRAIN, k=5))
