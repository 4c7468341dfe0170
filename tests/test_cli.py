"""The command line: the first run (download, cache, offline fallback) and the own-data commands."""

import hashlib
import io
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from skcreate.cli import main
from skcreate.cli.model_file import load_model
from skcreate.datasets import make_interactions

REPO = Path(__file__).resolve().parents[1]


def _closed_port_url():
    """A loopback URL nobody listens on: downloading from it fails at once, as offline."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ml-100k.zip"


def _run(args, env, cwd):
    """``python -m skcreate ARGS`` in a fresh process, outside the checkout (no ../shared)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SKCREATE_")}
    full_env.update(env, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "skcreate", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300)


def _ml100k_archive():
    """An ml-100k.zip in the official layout, on synthetic interactions."""
    X = make_interactions(n_users=150, n_items=60, random_state=1)
    data = "".join(f"{u + 1}\t{i + 1}\t4\t{t}\n" for u, i, t in X.itertuples(index=False))
    flags = "|".join(["0"] * 18 + ["1"])
    items = "".join(f"{i}|Film {i} (1990)|01-Jan-1990||http://example.org|{flags}\n"
                    for i in range(1, 61))
    genres = "".join(f"g{i}|{i}\n" for i in range(19))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml-100k/u.data", data)
        archive.writestr("ml-100k/u.item", items)
        archive.writestr("ml-100k/u.genre", genres)
    return buffer.getvalue(), len(X)


def _table_rows(out):
    return [line.split("|")[1].strip() for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| model")]


def test_first_run_offline_falls_back_to_synthetic(tmp_path):
    home = tmp_path / "data"
    result = _run(["compare", "--epochs", "1"],
                  {"SKCREATE_DATA": str(home), "SKCREATE_MOVIELENS_100K_URL": _closed_port_url()},
                  tmp_path)
    assert result.returncode == 0, result.stderr
    fallback = [line for line in result.stderr.splitlines() if "synthetic data set" in line]
    assert len(fallback) == 1
    assert "Could not download" in fallback[0] and "network access" in fallback[0]
    assert str(home) in fallback[0] and "SKCREATE_DATA" in fallback[0]
    assert result.stdout.startswith("\nsynthetic: next-item metrics")
    assert _table_rows(result.stdout) == ["Popular", "ALS", "SASRec", "CREATE"]
    assert not home.exists() or not any(p.is_file() for p in home.rglob("*"))


def test_first_run_no_download(tmp_path):
    result = _run(["compare", "--no-download", "--models", "Popular"],
                  {"SKCREATE_DATA": str(tmp_path / "data"),
                   "SKCREATE_MOVIELENS_100K_URL": _closed_port_url()}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--no-download" in result.stderr and "using the synthetic data set" in result.stderr
    assert _table_rows(result.stdout) == ["Popular"]


def test_first_run_downloads_verifies_and_caches(server, tmp_path):
    base_url, requests, root = server
    payload, n_rows = _ml100k_archive()
    (root / "ml-100k.zip").write_bytes(payload)
    home = tmp_path / "data"
    env = {"SKCREATE_DATA": str(home), "SKCREATE_MOVIELENS_100K_URL": f"{base_url}/ml-100k.zip",
           "SKCREATE_MOVIELENS_100K_CHECKSUM": hashlib.md5(payload).hexdigest()}
    for _ in range(2):
        result = _run(["compare", "--models", "Popular,ALS"], env, tmp_path)
        assert result.returncode == 0, result.stderr
        assert "synthetic" not in result.stderr + result.stdout
        assert f"movielens-100k: {n_rows:,} interactions, 150 users" in result.stderr
        assert _table_rows(result.stdout) == ["Popular", "ALS"]
    assert requests == ["/ml-100k.zip"]  # the second run read the cache
    assert (home / "raw" / "ml-100k.zip").read_bytes() == payload
    assert len(pd.read_csv(home / "ml-100k.csv.gz")) == n_rows
    assert pd.read_csv(home / "ml-100k-items.csv.gz")["genres"].eq("g18").all()


def test_first_run_wrong_checksum_is_an_error(server, tmp_path):
    base_url, requests, root = server
    payload, _ = _ml100k_archive()
    (root / "ml-100k.zip").write_bytes(payload)
    home = tmp_path / "data"
    result = _run(["compare", "--models", "Popular"],
                  {"SKCREATE_DATA": str(home),
                   "SKCREATE_MOVIELENS_100K_URL": f"{base_url}/ml-100k.zip",
                   "SKCREATE_MOVIELENS_100K_CHECKSUM": "0" * 32}, tmp_path)
    assert result.returncode == 1
    assert "Checksum mismatch" in result.stderr and hashlib.md5(payload).hexdigest() in \
        result.stderr
    assert result.stdout == "" and not any(p.is_file() for p in home.rglob("*"))


@pytest.fixture
def files(tmp_path):
    """Interactions with the user's own column names, and the histories of three users."""
    X = make_interactions(n_users=120, n_items=200, random_state=0).rename(
        columns={"user_id": "customer", "item_id": "product", "timestamp": "ts"})
    X["product"] = "p" + X["product"].astype(str)
    X.to_csv(tmp_path / "events.csv", index=False)
    X.to_parquet(tmp_path / "events.parquet")
    X[X["customer"] < 3].assign(customer=lambda f: "new" + f["customer"].astype(str)).to_csv(
        tmp_path / "histories.csv", index=False)
    return tmp_path, X


COLUMNS = ["--user-col", "customer", "--item-col", "product", "--time-col", "ts"]


def test_fit_recommend_round_trip(files, capsys):
    path, X = files
    assert main(["fit", str(path / "events.parquet"), "--model", "sasrec", "--set", "epochs=1",
                 "--set", "n_factors=16", "--set", "random_state=3", "--quiet",
                 "--out", str(path / "model.skc"), *COLUMNS]) == 0
    model = load_model(path / "model.skc")
    assert type(model).__name__ == "SASRecRecommender"
    assert (model.epochs, model.n_factors, model.random_state, model.verbose) == (1, 16, 3, False)
    assert main(["recommend", str(path / "model.skc"), str(path / "histories.csv"), "--k", "4",
                 "--out", str(path / "recs.csv"), *COLUMNS]) == 0
    recs = pd.read_csv(path / "recs.csv")
    assert list(recs.columns) == ["customer", "product", "score", "rank"]
    assert recs["customer"].tolist() == [f"new{u}" for u in range(3) for _ in range(4)]
    assert recs["rank"].tolist() == [1, 2, 3, 4] * 3
    histories = pd.read_csv(path / "histories.csv")
    seen = set(zip(histories["customer"], histories["product"]))
    assert not any(pair in seen for pair in zip(recs["customer"], recs["product"]))
    # without histories: every fitted user, to standard output
    capsys.readouterr()
    assert main(["recommend", str(path / "model.skc"), "--k", "2", *COLUMNS]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(out) == 2 * X["customer"].nunique()


def test_evaluate_prints_the_table(files, capsys):
    path, _ = files
    assert main(["evaluate", str(path / "events.csv"), "--model", "Popular,SASRec",
                 "--set", "SASRec.epochs=1", "--quiet", "--seeds", "0", "1", *COLUMNS]) == 0
    out = capsys.readouterr().out
    assert "global temporal split at q=0.8" in out
    assert _table_rows(out) == ["Popular", "SASRec"]
    assert "±" in out  # two seeds


@pytest.mark.parametrize("args, message", [
    (["fit", "{path}/events.csv", "--model", "CREATE", "--out", "{path}/m.skc"],
     "missing column(s) ['user_id', 'item_id', 'timestamp']; columns present: ['customer', "
     "'product', 'ts']"),
    (["fit", "{path}/events.csv", "--model", "Netflix", "--out", "{path}/m.skc"],
     "unknown model(s) ['Netflix']; choose from ['Random'"),
    (["fit", "{path}/events.csv", "--model", "CREATE", "--set", "epoch=2", "--out", "{path}/m.skc"],
     "CREATE has no parameter 'epoch'"),
    (["fit", "{path}/events.csv", "--model", "CREATE", "--set", "epochs", "--out", "{path}/m.skc"],
     "--set expects NAME=VALUE, got 'epochs'"),
    (["fit", "{path}/events.csv", "--model", "CREATE", "--set", "alignment=bogus",
      "--out", "{path}/m.skc", *COLUMNS],
     "alignment must be one of ['barlow', 'bt-sr', 'contrastive', 'none'] or an instance of "
     "skcreate.nn.Alignment, got 'bogus'"),
    (["evaluate", "{path}/events.csv", "--model", "Popular", "--set", "ALS.alpha=2"],
     "'ALS' is not among the models ['Popular']"),
    (["recommend", "{path}/events.csv"], "is not a model file written by `skcreate fit`"),
    (["recommend", "{path}/nothing.skc"], "No model file at"),
    (["evaluate", "{path}/events.txt", "--model", "Popular"], "unsupported suffix '.txt'"),
])
def test_bad_input_gets_a_clear_error(files, capsys, args, message):
    path, _ = files
    assert main([a.format(path=path) for a in args]) == 1
    err = capsys.readouterr().err
    assert f"skcreate {args[0]}: error: " in err and message in err
    assert not (path / "m.skc").exists()
