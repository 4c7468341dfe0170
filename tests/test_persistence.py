"""save / load without pickle: exact round trips, safety, versioning, fresh processes."""

import copy
import hashlib
import io
import json
import os
import pickle
import resource
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

import skcreate
from skcreate import (ALSRecommender, BPRRecommender, CREATERecommender, GraphRecommender,
                      LightGCNRecommender, PopRandomRecommender, PopularRecommender,
                      PureSVDRecommender, RandomRecommender, SASRecRecommender,
                      UltraGCNRecommender)
from skcreate.data.datasets import make_interactions
from skcreate.nn import InfoNCE, LightGCNEncoder
from skcreate.training import Trainer
from skcreate.apps.persistence import FORMAT_VERSION, ModelFileError, load_metadata

SMALL = dict(n_factors=8, random_state=0)
ESTIMATORS = [
    PopularRecommender(), RandomRecommender(random_state=0),
    PopRandomRecommender(random_state=0), PureSVDRecommender(**SMALL),
    ALSRecommender(iterations=3, **SMALL), BPRRecommender(iterations=3, **SMALL),
    SASRecRecommender(epochs=1, **SMALL), LightGCNRecommender(epochs=1, **SMALL),
    UltraGCNRecommender(epochs=1, **SMALL),
    GraphRecommender(LightGCNEncoder(n_factors=8, n_layers=2), epochs=1, random_state=0),
    CREATERecommender(epochs=1, warmup_epochs=1, **SMALL),
    CREATERecommender(epochs=2, warmup_epochs=1, sequence_encoder="bert4rec",
                      graph_encoder="ultragcn", alignment=InfoNCE(0.5),
                      trainer=Trainer(early_stopping=True), **SMALL),
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


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_deep_copy_of_a_fitted_model_is_independent_and_serves_the_same(estimator, frames):
    # also the path of pickling a model trained on a GPU (copied to the CPU first); torch
    # cannot deep-copy the graph's sparse CSR adjacency by itself
    df = frames["string ids"]
    model = clone(estimator).fit(df)
    copied = copy.deepcopy(model)
    pd.testing.assert_frame_equal(copied.recommend(df, k=5), model.recommend(df, k=5))
    network = getattr(model, "module_", None)
    if network is None:
        return
    for (name, mine), theirs in zip(network.state_dict().items(),
                                    copied.module_.state_dict().values()):
        assert torch.equal(mine, theirs), name
        assert mine.data_ptr() != theirs.data_ptr(), name
    if hasattr(network, "sequence"):
        # CREATE's branches still share one item table in the copy
        assert copied.module_.graph.item_table is copied.module_.sequence.item_table
    for module, other in zip(network.modules(), copied.module_.modules()):
        adjacency = getattr(module, "adjacency", None)
        if adjacency is not None:
            assert torch.equal(adjacency.to_dense(), other.adjacency.to_dense())
            assert adjacency.values().data_ptr() != other.adjacency.values().data_ptr()


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
    if "manifest.json" in content and "manifest.sha256" in content \
            and "manifest.sha256" not in members:
        # a crafted file, not a damaged one: its manifest checksum matches
        content["manifest.sha256"] = hashlib.sha256(content["manifest.json"]).hexdigest().encode()
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
    with pytest.raises(ModelFileError,
                       match=f"format version {FORMAT_VERSION + 1}.*upgrade skcreate"):
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
    with pytest.raises(ValueError, match="alignment: the part class .*Mine cannot be found "
                                         "again.*top level of a module.*pickle"):
        model.save(tmp_path / "m.skc")
    model = SASRecRecommender(epochs=1, trainer=Trainer(callbacks=[print]), **SMALL).fit(df)
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


# --- reliability: atomic save, malformed files, bounded memory, exact ids ---------------------

@pytest.fixture(scope="module")
def tiny():
    """A fitted popularity model and a fitted SASRec, on string ids."""
    df = make_interactions(n_users=50, n_items=30, random_state=0)
    df = df.assign(user_id=df.user_id.map("u{}".format), item_id=df.item_id.map("i{}".format))
    return {"popular": PopularRecommender().fit(df),
            "sasrec": SASRecRecommender(n_factors=8, epochs=1, max_len=5,
                                        random_state=0).fit(df)}


def assert_same_model(loaded, model):
    assert type(loaded) is type(model)
    pd.testing.assert_frame_equal(loaded.recommend(k=5), model.recommend(k=5))


def failing(message):
    def fail(*args, **kwargs):
        raise OSError(message)
    return fail


def write_then_fail(self, name, data, *args, **kwargs):
    # the manifest is written, then the disk "fills up"
    if name == "arrays.npz":
        raise OSError("disk full")
    return ORIGINAL_WRITESTR(self, name, data, *args, **kwargs)


ORIGINAL_WRITESTR = zipfile.ZipFile.writestr


@pytest.mark.parametrize("owner, attribute, replacement", [
    (zipfile.ZipFile, "writestr", write_then_fail),
    (os, "fsync", failing("fsync failed")),
    (os, "replace", failing("rename failed")),
], ids=["write", "fsync", "replace"])
def test_failed_save_leaves_the_previous_file_and_no_temporary(owner, attribute, replacement,
                                                               tiny, tmp_path, monkeypatch):
    path = tmp_path / "m.skc"
    tiny["popular"].save(path)
    before = path.read_bytes()
    monkeypatch.setattr(owner, attribute, replacement)
    with pytest.raises(OSError, match="disk full|failed"):
        tiny["sasrec"].save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.skc"]
    assert path.read_bytes() == before
    assert_same_model(skcreate.load(path), tiny["popular"])


def test_killed_save_leaves_the_previous_file(tiny, tmp_path):
    path, started = tmp_path / "m.skc", tmp_path / "started"
    tiny["popular"].save(path)
    before = path.read_bytes()
    # the child writes a model, then hangs before its rename until it is killed
    script = textwrap.dedent(f"""
        import os, pathlib, time
        from skcreate import PopularRecommender
        from skcreate.data.datasets import make_interactions
        model = PopularRecommender().fit(make_interactions(n_users=2000, n_items=500))
        def hang(fd):
            pathlib.Path({str(started)!r}).touch()
            time.sleep(60)
        os.fsync = hang
        model.save({str(path)!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        for _ in range(600):
            if started.exists() or child.poll() is not None:
                break
            time.sleep(0.05)
        assert started.exists(), "the child never reached its save"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert path.read_bytes() == before
    assert_same_model(skcreate.load(path), tiny["popular"])


def load_or_model_file_error(path, model):
    """Load ``path``: it must give ``model``'s recommendations or raise ModelFileError."""
    try:
        loaded = skcreate.load(path)
    except ModelFileError:
        return False
    assert_same_model(loaded, model)
    return True


@pytest.mark.parametrize("name, n_flips", [("popular", 300), ("sasrec", 100)])
def test_byte_flips_load_the_same_model_or_raise_model_file_error(name, n_flips, tiny,
                                                                   tmp_path):
    original = tmp_path / "m.skc"
    tiny[name].save(original)
    data = original.read_bytes()
    rng = np.random.default_rng(0)
    flipped, loaded = tmp_path / "flipped.skc", 0
    for _ in range(n_flips):
        damaged = bytearray(data)
        damaged[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
        flipped.write_bytes(bytes(damaged))
        loaded += load_or_model_file_error(flipped, tiny[name])
    assert loaded < n_flips  # most flips are caught (only unused zip bytes may load)


def edit(manifest, change):
    manifest = json.loads(json.dumps(manifest))
    change(manifest)
    return manifest


EDITS = {
    "no checksums": lambda m: m.pop("checksums"),
    "no fitted": lambda m: m.pop("fitted"),
    "no params": lambda m: m.pop("params"),
    "no estimator": lambda m: m.pop("estimator"),
    "no format version": lambda m: m.pop("format_version"),
    "format version true": lambda m: m.update(format_version=True),
    "format version str": lambda m: m.update(format_version="2"),
    "empty checksums": lambda m: m.update(checksums={}),
    "no weights checksum": lambda m: m["checksums"].pop("weights.pt"),
    "checksum of unknown member": lambda m: m["checksums"].update({"x.py": "0" * 64}),
    "checksums a list": lambda m: m.update(checksums=[]),
    "fitted a list": lambda m: m.update(fitted=[]),
    "fitted spec a str": lambda m: m["fitted"].update(module_="module"),
    "fitted spec no kind": lambda m: m["fitted"]["n_items_"].pop("kind"),
    "unknown kind": lambda m: m["fitted"]["n_items_"].update(kind="code"),
    "index spec a number": lambda m: m["fitted"]["item_ids_"].update(spec=3),
    "index spec no values": lambda m: m["fitted"]["item_ids_"]["spec"].pop("bytes"),
    "array key unknown": lambda m: m["fitted"]["item_popularity_"].update(key="nope"),
    "array key a list": lambda m: m["fitted"]["item_popularity_"].update(key=[1]),
    "attribute recommend": lambda m: m["fitted"].update(
        recommend={"kind": "value", "value": 1}),
    "attribute __class__": lambda m: m["fitted"].update(
        __class__={"kind": "value", "value": 1}),
    "attribute module_ missing": lambda m: m["fitted"].pop("module_"),
    "n_items_ a lie": lambda m: m["fitted"]["n_items_"].update(value=5),
    "indptr another array": lambda m: m["fitted"]["interactions_"]["spec"].update(
        indptr="item_popularity_"),
    "index dtype a list": lambda m: m["fitted"]["item_ids_"]["spec"].update(dtype=[]),
    "params a str": lambda m: m.update(params="x"),
    "unknown param": lambda m: m["params"].update(recommend=1),
    "max_len 3e8": lambda m: m["params"].update(max_len=3e8),
    "max_len str": lambda m: m["params"].update(max_len="5"),
    "negative n_factors": lambda m: m["params"].update(n_factors=-8),
    "unknown component": lambda m: m["params"].update(
        max_len={"__component__": "os.system", "params": {}}),
    "user part from a module not allowed": lambda m: m["params"].update(
        max_len={"__component__": "os:system", "params": {}}),
    "component params a list": lambda m: m["params"].update(
        max_len={"__component__": "InfoNCE", "params": []}),
    "relabelled as CREATE": lambda m: m.update(estimator="CREATERecommender"),
    "relabelled as LightGCN": lambda m: m.update(estimator="LightGCNRecommender"),
    "relabelled as Popular": lambda m: m.update(estimator="PopularRecommender"),
    "estimator a list": lambda m: m.update(estimator=["SASRecRecommender"]),
    "metadata a list": lambda m: m.update(metadata=[]),
    "not an object": lambda m: (m.clear(), m.update(format=1)),
}


@pytest.mark.parametrize("change", EDITS.values(), ids=EDITS.keys())
def test_edited_manifests_raise_only_model_file_error(change, tiny, tmp_path):
    path = tmp_path / "m.skc"
    tiny["sasrec"].save(path)
    manifest = json.dumps(edit(manifest_of(path), change)).encode()
    with pytest.raises(ModelFileError, match="altered.skc"):
        skcreate.load(rewrite(path, **{"manifest.json": manifest}))


def test_damaged_members_raise_model_file_error(tiny, tmp_path):
    path = tmp_path / "m.skc"
    tiny["sasrec"].save(path)
    manifest = zipfile.ZipFile(path).read("manifest.json")
    cases = {
        "checksum mismatch in manifest.json": {"manifest.sha256": b"0" * 64},
        "part manifest.sha256 is missing": {"manifest.sha256": None},
        "manifest.json is not valid JSON": {"manifest.json": b"{\xff"},
        "part manifest.json is missing": {"manifest.json": None},
    }
    for message, members in cases.items():
        with pytest.raises(ModelFileError, match=message):
            skcreate.load(rewrite(path, **members))
    # a second manifest.json: which one a reader takes is ambiguous
    duplicated = tmp_path / "duplicated.skc"
    duplicated.write_bytes(path.read_bytes())
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(duplicated, "a") as archive:
            archive.writestr("manifest.json", manifest)
    with pytest.raises(ModelFileError, match="stored more than once"):
        skcreate.load(duplicated)
    with pytest.raises(ModelFileError, match="stored more than once"):
        load_metadata(duplicated)
    empty = tmp_path / "empty.skc"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="not a zip archive"):
        skcreate.load(empty)


@pytest.mark.parametrize("lie_about_compressed_size", [False, True])
def test_zip_bomb_is_refused_before_decompressing(lie_about_compressed_size, tiny, tmp_path):
    tiny["popular"].save(tmp_path / "m.skc")
    path = tmp_path / "bomb.skc"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", zipfile.ZipFile(tmp_path / "m.skc").read(
            "manifest.json"))
        archive.writestr("arrays.npz", bytes(2**20))
        local_header = archive.getinfo("arrays.npz").header_offset
    # declare 2 GiB for the 1 MiB of zeros (about 1 kB compressed), in the local header and in
    # the central directory (whose last entry is arrays.npz)
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    for offset in (local_header + 22, central + 24):
        data[offset:offset + 4] = (2**31).to_bytes(4, "little")
    if lie_about_compressed_size:  # claim 100 MiB compressed, which would lift a ratio bound
        for offset in (local_header + 18, central + 20):
            data[offset:offset + 4] = (100 * 2**20).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    began = time.perf_counter()
    with pytest.raises(ModelFileError, match="arrays.npz declares 2147483648 bytes.*zip bomb"):
        skcreate.load(path)
    assert time.perf_counter() - began < 1


@pytest.mark.parametrize("kind", ["/dev/zero", "directory", "fifo"])
def test_non_regular_files_are_refused_before_reading(kind, tmp_path):
    if kind == "directory":
        path = tmp_path
    elif kind == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    else:
        path = kind
    with pytest.raises(ModelFileError, match="not a regular file"):
        skcreate.load(path)
    with pytest.raises(ModelFileError, match="not a regular file"):
        load_metadata(path)


def test_version_1_files_still_load(tmp_path):
    # version 1: no manifest.sha256 (int ids, so that no index used the new UTF-8 layout)
    model = PopularRecommender().fit(make_interactions(n_users=50, n_items=30, random_state=0))
    model.save(tmp_path / "m.skc")
    manifest = json.dumps({**manifest_of(tmp_path / "m.skc"), "format_version": 1}).encode()
    old = rewrite(tmp_path / "m.skc", **{"manifest.json": manifest, "manifest.sha256": None})
    assert_same_model(skcreate.load(old), model)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.text(max_size=3), min_size=2, max_size=6, unique=True))
def test_string_ids_round_trip_exactly(ids, tmp_path):
    # "a" and "a\x00" are different ids: numpy's fixed-width str arrays would merge them
    ids = ids + [ids[0] + "\x00", ids[0] + "\x00\x00"]
    df = pd.DataFrame({"user_id": np.repeat(ids, len(ids)), "item_id": np.tile(ids, len(ids)),
                       "timestamp": np.arange(len(ids) ** 2)})
    model = PopularRecommender(filter_seen=False).fit(df)
    model.save(tmp_path / "ids.skc")
    loaded = skcreate.load(tmp_path / "ids.skc")
    assert loaded.item_ids_.tolist() == model.item_ids_.tolist()
    assert loaded.interactions_.user_ids.tolist() == model.interactions_.user_ids.tolist()
    assert_same_model(loaded, model)


def test_array_header_declaring_a_huge_shape_is_refused(tiny, tmp_path):
    # a crafted arrays.npz (with matching checksum) whose .npy header claims 8 TiB
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<i8", "fortran_order": False, "shape": (2**40,)})
    npy = header.getvalue() + bytes(8)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as npz:
        npz.writestr("item_popularity_.npy", npy)
    tiny["popular"].save(tmp_path / "m.skc")
    began = time.perf_counter()
    with pytest.raises(ModelFileError, match="claims shape .1099511627776,. of int64"):
        skcreate.load(with_checksums(tmp_path / "m.skc", **{"arrays.npz": buffer.getvalue()}))
    assert time.perf_counter() - began < 1


@pytest.mark.parametrize("params", [{"max_len": 300_000_000}, {"n_factors": 2**20}])
def test_oversized_network_in_manifest_is_refused_without_allocating(params, tiny, tmp_path):
    # valid as parameters, but the saved weights cannot match such a network: the shapes are
    # compared on torch's meta device before any memory is taken
    path = tmp_path / "m.skc"
    tiny["sasrec"].save(path)
    manifest = json.dumps(edit(manifest_of(path), lambda m: m["params"].update(params)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    with pytest.raises(ModelFileError, match="weights do not fit the network"):
        skcreate.load(rewrite(path, **{"manifest.json": manifest.encode()}))
    assert time.perf_counter() - began < 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


def paths_of(tree, prefix=()):
    """Every (key path) in a JSON tree, containers included."""
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths_of(value, prefix + (key,))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from paths_of(value, prefix + (index,))


def _containers(inner):
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    _containers, max_leaves=5)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_value_anywhere_in_the_manifest_loads_or_raises_model_file_error(data, tiny,
                                                                             tmp_path):
    path = tmp_path / "m.skc"
    if not path.exists():
        tiny["sasrec"].save(path)
    manifest = manifest_of(path)
    where = data.draw(st.sampled_from(list(paths_of(manifest))[1:]))
    parent = manifest
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = data.draw(JSON)
    try:
        skcreate.load(rewrite(path, **{"manifest.json": json.dumps(manifest).encode()}))
    except ModelFileError:
        pass


@pytest.mark.parametrize("device", ["meta", "cuda:x", "cuda"])
def test_a_device_this_machine_lacks_is_the_callers_error_not_the_files(device, tiny,
                                                                        tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    tiny["sasrec"].save(tmp_path / "m.skc")
    with pytest.raises(ValueError, match="device") as error:
        skcreate.load(tmp_path / "m.skc", device=device)
    assert not isinstance(error.value, ModelFileError)
