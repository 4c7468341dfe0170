"""save / load without pickle: exact round trips, safety, versioning, fresh processes."""

import io
import json
import pickle
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import skcreate
from skcreate import (ALSRecommender, BPRRecommender, CREATERecommender, LightGCNRecommender,
                      PopRandomRecommender, PopularRecommender, PureSVDRecommender,
                      RandomRecommender, SASRecRecommender, UltraGCNRecommender)
from skcreate.datasets import make_interactions
from skcreate.nn import InfoNCE
from skcreate.persistence import FORMAT_VERSION, ModelFileError

SMALL = dict(n_factors=8, random_state=0)
ESTIMATORS = [
    PopularRecommender(), RandomRecommender(random_state=0),
    PopRandomRecommender(random_state=0), PureSVDRecommender(**SMALL),
    ALSRecommender(iterations=3, **SMALL), BPRRecommender(iterations=3, **SMALL),
    SASRecRecommender(epochs=1, **SMALL), LightGCNRecommender(epochs=1, **SMALL),
    UltraGCNRecommender(epochs=1, **SMALL),
    CREATERecommender(epochs=1, warmup_epochs=1, **SMALL),
    CREATERecommender(epochs=2, warmup_epochs=1, sequence_encoder="bert4rec",
                      graph_encoder="ultragcn", alignment=InfoNCE(0.5), early_stopping=True,
                      **SMALL),
]


@pytest.fixture(scope="module")
def frames():
    df = make_interactions(n_users=120, n_items=50, random_state=0)
    return {
        "string ids": df.assign(user_id=df.user_id.map("{:03d}".format),
                                item_id=df.item_id.map("i{:04d}".format)),
        "int64 near 2**63": df.assign(user_id=df.user_id + (2**63 - 1000),
                                      item_id=df.item_id.astype(np.int64) + (2**62)),
        "categorical": df.assign(user_id=df.user_id.astype("category"),
                                 item_id=df.item_id.astype(str).astype("category")),
    }


# every estimator with string ids; the other id kinds with one model of each storage path
CASES = [(e, "string ids") for e in ESTIMATORS] + [
    (e, kind) for e in (PopularRecommender(), ALSRecommender(iterations=3, **SMALL),
                        SASRecRecommender(epochs=1, **SMALL))
    for kind in ("int64 near 2**63", "categorical")]


@pytest.mark.parametrize("estimator, kind", CASES,
                         ids=[f"{type(e).__name__}-{k}" for e, k in CASES])
def test_round_trip_is_exact(estimator, kind, frames, tmp_path):
    df = frames[kind]
    model = clone(estimator).fit(df)
    path = tmp_path / "model.skc"
    model.save(path)
    loaded = skcreate.load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params().keys() == model.get_params().keys()
    users = df.user_id.unique()[:5]
    histories = df[df.user_id.isin(users)]
    for served in (None, histories):
        pd.testing.assert_frame_equal(loaded.recommend(served, k=5), model.recommend(served, k=5))
    assert loaded.score(df) == model.score(df)


def test_manifest_records_versions_params_and_curves(tmp_path):
    model = SASRecRecommender(epochs=2, **SMALL).fit(make_interactions(80, 30, random_state=0))
    model.save(tmp_path / "m.skc")
    with zipfile.ZipFile(tmp_path / "m.skc") as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert set(manifest["versions"]) >= {"skcreate", "torch", "numpy"}
    assert manifest["estimator"] == "SASRecRecommender"
    assert manifest["params"]["epochs"] == 2
    assert manifest["fitted"]["loss_curve_"]["value"] == model.loss_curve_
    loaded = skcreate.load(tmp_path / "m.skc")
    assert loaded.loss_curve_ == model.loss_curve_ and loaded.n_epochs_ == 2


def rewrite(path, **members):
    """Copy of a model file with some members replaced (bytes) or removed (None)."""
    with zipfile.ZipFile(path) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    for name, data in members.items():
        if data is None:
            content.pop(name)
        else:
            content[name] = data
    out = path.with_name("altered.skc")
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)
    return out


class Boom:
    def __reduce__(self):
        return (print, ("code ran",))


@pytest.fixture
def saved(tmp_path):
    model = LightGCNRecommender(epochs=1, **SMALL).fit(make_interactions(80, 30, random_state=0))
    model.save(tmp_path / "m.skc")
    return tmp_path / "m.skc"


def manifest_of(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))


def with_checksums(path, **members):
    """Members replaced and the manifest's checksums updated to match (a crafted file)."""
    import hashlib

    manifest = manifest_of(path)
    for name, data in members.items():
        manifest["checksums"][name] = hashlib.sha256(data).hexdigest()
    return rewrite(path, **members, **{"manifest.json": json.dumps(manifest).encode()})


def test_malicious_pickle_in_weights_is_refused(saved, capsys):
    buffer = io.BytesIO()
    pickle.dump({"w": Boom()}, buffer, protocol=2)
    with pytest.raises(ModelFileError, match="weights.pt holds more than tensors"):
        skcreate.load(with_checksums(saved, **{"weights.pt": buffer.getvalue()}))
    assert "code ran" not in capsys.readouterr().out


def test_pickled_array_is_refused(saved):
    buffer = io.BytesIO()
    np.savez(buffer, evil=np.array([Boom()], dtype=object))
    with pytest.raises(ModelFileError, match="pickled object"):
        skcreate.load(with_checksums(saved, **{"arrays.npz": buffer.getvalue()}))


def test_a_pickle_file_is_not_a_model_file(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(PopularRecommender()))
    with pytest.raises(ModelFileError, match="not a zip archive"):
        skcreate.load(path)


def test_newer_format_missing_part_and_checksum_are_named(saved):
    manifest = manifest_of(saved)
    newer = rewrite(saved, **{"manifest.json": json.dumps(
        {**manifest, "format_version": FORMAT_VERSION + 1}).encode()})
    with pytest.raises(ModelFileError, match="format version 2.*upgrade skcreate"):
        skcreate.load(newer)
    with pytest.raises(ModelFileError, match="part weights.pt is missing"):
        skcreate.load(rewrite(saved, **{"weights.pt": None}))
    with pytest.raises(ModelFileError, match="checksum mismatch in arrays.npz"):
        skcreate.load(rewrite(saved, **{"arrays.npz": b"x" + zipfile.ZipFile(saved).read(
            "arrays.npz")}))
    with pytest.raises(ModelFileError, match="unexpected member"):
        skcreate.load(rewrite(saved, **{"run_me.py": b"print(1)"}))


def test_user_defined_parts_and_callbacks_are_refused_with_a_reason(tmp_path):
    from skcreate.nn import Alignment

    class Mine(Alignment):
        def forward(self, a, b):
            return (a - b).pow(2).mean()

    df = make_interactions(80, 30, random_state=0)
    model = CREATERecommender(alignment=Mine(), epochs=1, warmup_epochs=0, **SMALL).fit(df)
    with pytest.raises(ValueError, match="alignment=.*user-defined part.*pickle"):
        model.save(tmp_path / "m.skc")
    model = SASRecRecommender(epochs=1, callbacks=[print], **SMALL).fit(df)
    with pytest.raises(ValueError, match="callbacks"):
        model.save(tmp_path / "m.skc")


def test_unfitted_model_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SASRecRecommender().save(tmp_path / "m.skc")


def test_loads_and_serves_in_a_fresh_process_with_other_threads(tmp_path):
    df = make_interactions(n_users=100, n_items=40, random_state=0)
    model = CREATERecommender(epochs=1, warmup_epochs=1, **SMALL).fit(df)
    model.save(tmp_path / "m.skc")
    df.to_csv(tmp_path / "df.csv", index=False)
    model.recommend(k=5).to_csv(tmp_path / "expected.csv", index=False)
    script = textwrap.dedent(f"""
        import pandas as pd, torch
        torch.set_num_threads(1)
        import skcreate
        model = skcreate.load({str(tmp_path / 'm.skc')!r})
        model.recommend(k=5).to_csv({str(tmp_path / 'got.csv')!r}, index=False)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    expected = pd.read_csv(tmp_path / "expected.csv")
    got = pd.read_csv(tmp_path / "got.csv")
    pd.testing.assert_frame_equal(got[["user_id", "item_id", "rank"]],
                                  expected[["user_id", "item_id", "rank"]])
    np.testing.assert_allclose(got.score, expected.score, rtol=1e-5)
