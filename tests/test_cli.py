"""The command line: the first run (download, cache, offline fallback) and the own-data commands."""

import hashlib
import io
import os
import socket
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from skcreate.apps.cli import main
from skcreate.apps.cli._options import MODEL_NAMES, CommandError, make_models
from skcreate.apps.cli.compare import DATASET_NAMES
from skcreate.apps.cli.model_file import load_model
from skcreate.apps.comparison import default_models
from skcreate.data.datasets import list_datasets, make_interactions
from skcreate.data.model_selection import GlobalTemporalSplit

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


@pytest.fixture
def popular(files):
    """A Popular model fitted on ``events.csv`` under the user's column names."""
    path, X = files
    assert main(["fit", str(path / "events.csv"), "--model", "Popular",
                 "--out", str(path / "popular.skc"), *COLUMNS]) == 0
    return path / "popular.skc"


def test_fit_recommend_round_trip(files, capsys):
    path, X = files
    assert main(["fit", str(path / "events.parquet"), "--model", "sasrec", "--set", "epochs=1",
                 "--set", "n_factors=16", "--set", "random_state=3", "--quiet",
                 "--out", str(path / "model.skc"), *COLUMNS]) == 0
    model, time_kind = load_model(path / "model.skc")
    assert type(model).__name__ == "SASRecRecommender"
    assert (model.epochs, model.n_factors, model.random_state) == (1, 16, 3)
    assert model.get_params()["trainer__verbose"] is False
    # the model was fitted under the file's own column names, and remembers them
    assert (model.user_col, model.item_col, model.time_col, time_kind) == (
        "customer", "product", "ts", "numeric")
    assert main(["recommend", str(path / "model.skc"), str(path / "histories.csv"), "--k", "4",
                 "--out", str(path / "recs.csv")]) == 0
    recs = pd.read_csv(path / "recs.csv")
    assert list(recs.columns) == ["customer", "product", "score", "rank", "source"]
    assert recs["customer"].tolist() == [f"new{u}" for u in range(3) for _ in range(4)]
    assert recs["rank"].tolist() == [1, 2, 3, 4] * 3
    assert (recs["source"] == "model").all()
    histories = pd.read_csv(path / "histories.csv")
    seen = set(zip(histories["customer"], histories["product"]))
    assert not any(pair in seen for pair in zip(recs["customer"], recs["product"]))
    # without histories: every fitted user, to standard output
    capsys.readouterr()
    assert main(["recommend", str(path / "model.skc"), "--k", "2"]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(out.columns) == ["customer", "product", "score", "rank", "source"]
    assert len(out) == 2 * X["customer"].nunique()


def test_recommend_flags_name_other_columns(files, popular):
    path, _ = files
    pd.read_csv(path / "histories.csv").rename(
        columns={"customer": "who", "product": "what", "ts": "when"}).to_csv(
        path / "renamed.csv", index=False)
    assert main(["recommend", str(popular), str(path / "renamed.csv"), "--k", "3",
                 "--user-col", "who", "--item-col", "what", "--time-col", "when",
                 "--out", str(path / "recs.csv")]) == 0
    recs = pd.read_csv(path / "recs.csv")
    assert list(recs.columns) == ["who", "what", "score", "rank", "source"]
    assert len(recs) == 9


def test_recommend_refuses_histories_of_another_time_kind(files, popular, capsys):
    path, _ = files
    histories = pd.read_csv(path / "histories.csv")
    histories.assign(ts=pd.to_datetime(histories["ts"], unit="s")).to_csv(
        path / "dated.csv", index=False)
    assert main(["recommend", str(popular), str(path / "dated.csv")]) == 1
    err = capsys.readouterr().err
    assert f"skcreate recommend: error: {path / 'dated.csv'}: time column 'ts' holds datetime " \
        "times, but the model was fitted on numeric times" in err


def test_recommend_reads_model_files_without_metadata(files, capsys):
    # a file of an older skcreate: no time kind recorded, the estimator's default columns
    path, X = files
    model = make_models("Popular", [], 0, False)["Popular"]
    model.fit(X.rename(columns={"customer": "user_id", "product": "item_id", "ts": "timestamp"}))
    model.save(path / "old.skc")
    assert main(["recommend", str(path / "old.skc"), "--k", "1"]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(out.columns) == ["user_id", "item_id", "score", "rank", "source"]


def test_recommend_serves_a_model_with_own_parts_from_an_allowed_module(files, capsys,
                                                                        monkeypatch):
    path, X = files
    examples = Path(__file__).resolve().parents[1] / "docs" / "examples"
    monkeypatch.syspath_prepend(str(examples))
    monkeypatch.delitem(sys.modules, "custom_parts", raising=False)
    import custom_parts

    model = make_models("CREATE", ["epochs=1", "warmup_epochs=0", "n_factors=8"], 0,
                        False)["CREATE"]
    model.set_params(alignment=custom_parts.CosineAlignment(), user_col="customer",
                     item_col="product", time_col="ts")
    model.fit(X).save(path / "own.skc")
    assert main(["recommend", str(path / "own.skc"), "--k", "2"]) == 1
    err = capsys.readouterr().err
    assert "user part custom_parts:CosineAlignment" in err and len(err.splitlines()) == 1
    assert main(["recommend", str(path / "own.skc"), "--k", "2",
                 "--allow-module", "custom_parts"]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(out) == 2 * X["customer"].nunique()


@pytest.mark.parametrize("command", ["fit", "recommend"])
@pytest.mark.parametrize("out, reason", [
    ("nowhere/out.csv", ": directory {path}/nowhere does not exist."),
    (".", " cannot be written: Is a directory.")])
def test_out_is_checked_before_any_work(files, popular, capsys, command, out, reason):
    path, _ = files
    capsys.readouterr()
    source = ([str(path / "events.csv"), "--model", "ALS", *COLUMNS] if command == "fit"
              else [str(popular), str(path / "histories.csv")])
    assert main([command, *source, "--out", str(path / out)]) == 1
    err = capsys.readouterr().err
    # one line, before reading the data: no "N interactions" note
    assert err == f"skcreate {command}: error: --out {path / out}{reason.format(path=path)}\n"
    assert not (path / "nowhere").exists()


def test_set_reaches_the_options_of_a_part():
    model = make_models("CREATE", ["alignment=contrastive", "alignment__temperature=0.5",
                                   "graph_encoder__n_layers=2"], 0, False)["CREATE"]
    assert (model.alignment.temperature, model.graph_encoder.n_layers) == (0.5, 2)
    with pytest.raises(CommandError, match="CREATE has no parameter 'alignment__tau'"):
        make_models("CREATE", ["alignment__tau=0.5"], 0, False)


def test_set_applies_to_every_model_that_has_it(files, capsys):
    models = make_models("Popular,SASRec", ["epochs=2"], 0, False)
    assert models["SASRec"].epochs == 2
    assert models["Popular"].get_params() == make_models("Popular", [], 0, False)[
        "Popular"].get_params()
    path, _ = files
    assert main(["evaluate", str(path / "events.csv"), "--model", "Popular,ALS",
                 "--set", "epochs=2", *COLUMNS]) == 1
    assert "none of the models ['Popular', 'ALS'] has a parameter 'epochs'" in \
        capsys.readouterr().err
    assert main(["evaluate", str(path / "events.csv"), "--model", "Popular,SASRec",
                 "--set", "Popular.epochs=2", *COLUMNS]) == 1
    assert "Popular has no parameter 'epochs'" in capsys.readouterr().err


def test_evaluate_prints_the_table_and_its_test_users(files, capsys):
    path, X = files
    assert main(["evaluate", str(path / "events.csv"), "--model", "Popular,SASRec",
                 "--set", "epochs=1", "--quiet", "--seeds", "0", "1", *COLUMNS]) == 0
    out = capsys.readouterr().out
    assert "global temporal split at q=0.8" in out
    assert _table_rows(out) == ["Popular", "SASRec"]
    assert "±" in out  # two seeds
    _, test = next(GlobalTemporalSplit(0.8, user_col="customer", item_col="product",
                                       time_col="ts").split(X))
    n_users = X["customer"].iloc[test].nunique()
    assert 0 < n_users < X["customer"].nunique()
    assert f"next-item metrics in %, {n_users:,} warm test users," in out


def test_warnings_are_one_line_and_fallback_users_are_marked(files, popular, capsys):
    path, X = files
    # new0 knows fitted items, new1 only unknown ones: popularity serves new1
    pd.DataFrame({"customer": ["new0", "new0", "new1"], "product": ["p5", "zzz", "yyy"],
                  "ts": [1, 2, 3]}).to_csv(path / "mixed.csv", index=False)
    capsys.readouterr()
    shown = warnings.showwarning
    assert main(["recommend", str(popular), str(path / "mixed.csv"), "--k", "2",
                 "--out", str(path / "recs.csv")]) == 0
    assert warnings.showwarning is shown  # restored
    err = capsys.readouterr().err
    assert "UserWarning" not in err and ".py:" not in err
    notes = [line for line in err.splitlines() if line.startswith("skcreate ")]
    assert notes == [
        "skcreate recommend: warning: 2 interaction(s) in histories have items unseen at fit; "
        "they were ignored as context and cannot be recommended.",
        "skcreate recommend: warning: 1 user(s) have no history item from the fitted "
        "catalogue; they are served by popularity."]
    recs = pd.read_csv(path / "recs.csv")
    assert recs["source"].tolist() == ["model", "model", "popularity", "popularity"]
    counts = X["product"].value_counts()
    assert recs.loc[recs["customer"] == "new1", "score"].tolist() == counts.iloc[:2].tolist()


def test_k_above_the_catalogue_warns_once(files, popular, capsys):
    path, X = files
    n_items = X["product"].nunique()
    capsys.readouterr()
    assert main(["recommend", str(popular), str(path / "histories.csv"), "--k", "500",
                 "--out", str(path / "recs.csv")]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("skcreate ")]
    assert warned == [f"skcreate recommend: warning: k=500, but the catalogue has {n_items} "
                      f"items: each user gets at most {n_items} minus the items of their "
                      "history."]
    assert pd.read_csv(path / "recs.csv").groupby("customer").size().max() < n_items


def test_a_reader_that_stops_early_is_not_an_error(files, popular):
    path, _ = files
    # `skcreate recommend ... | head -1`: the pipe closes while rows are still written
    proc = subprocess.Popen([sys.executable, "-m", "skcreate", "recommend", str(popular),
                             "--k", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"customer,product,score,rank")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "error" not in err.lower() and "Traceback" not in err


@pytest.mark.parametrize("suffix, place", [(".csv", "line 5"), (".parquet", "row 3 (0-based)")])
def test_times_are_read_alike_from_csv_and_parquet(tmp_path, capsys, suffix, place):
    frame = pd.DataFrame({"user_id": [1, 1, 2, 2, 2], "item_id": [1, 2, 1, 3, 2],
                          "timestamp": ["2024-01-01", "2024-01-02T10:00", "2024-01-01",
                                        "2024-01-03", "2024-01-04"]})
    good, bad = tmp_path / f"good{suffix}", tmp_path / f"bad{suffix}"
    write = "to_csv" if suffix == ".csv" else "to_parquet"
    getattr(frame, write)(good, index=False)
    getattr(frame.assign(timestamp=frame["timestamp"].replace("2024-01-03", "03/01/24")),
            write)(bad, index=False)
    assert main(["fit", str(good), "--model", "Popular", "--out", str(tmp_path / "m.skc")]) == 0
    assert load_model(tmp_path / "m.skc")[1] == "datetime"
    assert main(["fit", str(bad), "--model", "Popular", "--out", str(tmp_path / "m.skc")]) == 1
    assert capsys.readouterr().err.endswith(
        f"skcreate fit: error: {bad}: time column 'timestamp' has '03/01/24' at {place}, "
        "neither a number nor an ISO-8601 time.\n")


def test_empty_csv_is_named(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    assert main(["evaluate", str(tmp_path / "empty.csv"), "--model", "Popular"]) == 1
    assert f"skcreate evaluate: error: {tmp_path / 'empty.csv'} is empty" in \
        capsys.readouterr().err


@pytest.mark.parametrize("argv, option", [
    (["compare", "--epochs", "0"], "--epochs"), (["compare", "--epochs", "two"], "--epochs"),
    (["recommend", "model.skc", "--k", "0"], "--k"), (["recommend", "model.skc", "--k", "-3"],
                                                       "--k")])
def test_counts_below_one_are_refused_before_any_work(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert f"argument {option}: expected an integer >= 1" in capsys.readouterr().err


def test_fit_help_lists_model_parameters(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()
             if line.startswith("  ") and line.split()[0] in MODEL_NAMES}
    assert list(lines) == list(MODEL_NAMES)
    for name, est in default_models().items():
        params = est.get_params()
        for param in ("warmup_epochs", "epochs", "n_factors", "learning_rate"):
            if param in params:
                assert f"{param}={params[param]}" in lines[name].split()
    assert "warmup_epochs=" in lines["CREATE"] and "epochs=" in lines["SASRec"]


def test_help_names_match_the_library():
    assert MODEL_NAMES == tuple(default_models())
    assert DATASET_NAMES == tuple(list_datasets())


def test_cli_imports_no_torch():
    # the help must answer without the estimators' dependencies (needs skcreate/__init__ lazy)
    code = ("import sys, skcreate.apps.cli; skcreate.apps.cli.build_parser().format_help(); "
            "print(sorted({'torch', 'sklearn', 'implicit'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


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


def test_a_diverged_fit_is_one_line_and_saves_nothing(files, capsys):
    path, _ = files
    assert main(["fit", str(path / "events.csv"), "--model", "LightGCN", "--set", "epochs=3",
                 "--set", "learning_rate=1e8", "--out", str(path / "m.skc"), *COLUMNS]) == 1
    err = capsys.readouterr().err
    assert "skcreate fit: error: The global loss exploded to" in err
    assert "Try a lower learning rate" in err and "Traceback" not in err
    assert not (path / "m.skc").exists()


def test_a_damaged_checkpoint_is_one_line(files, capsys):
    path, _ = files
    (path / "fit.ckpt").write_bytes(b"\x00" * 100)
    assert main(["fit", str(path / "events.csv"), "--model", "SASRec", "--set", "epochs=1",
                 "--set", f"trainer__checkpoint_path={path / 'fit.ckpt'}",
                 "--out", str(path / "m.skc"), *COLUMNS]) == 1
    err = capsys.readouterr().err
    assert "skcreate fit: error: the checkpoint at" in err and "no checksum" in err
    assert not (path / "m.skc").exists()


def press_ctrl_c_after_the_first_epoch(monkeypatch):
    import skcreate.training.trainer

    def ctrl_c(epoch, elapsed, loss):
        raise KeyboardInterrupt

    train = skcreate.training.trainer.train
    monkeypatch.setattr(skcreate.training.trainer, "train",
                        lambda *args, **kwargs: train(*args, **{**kwargs, "callbacks": [ctrl_c]}))


def test_ctrl_c_during_a_neural_fit_saves_the_epochs_so_far_with_a_warning(files, capsys,
                                                                           monkeypatch):
    path, _ = files
    press_ctrl_c_after_the_first_epoch(monkeypatch)
    assert main(["fit", str(path / "events.csv"), "--model", "SASRec", "--set", "epochs=3",
                 "--out", str(path / "m.skc"), *COLUMNS]) == 0
    err = capsys.readouterr().err
    assert "skcreate fit: warning: training was interrupted after 1 epoch(s);" in err
    assert "Traceback" not in err
    model, _ = load_model(path / "m.skc")
    assert model.interrupted_ and len(model.loss_curve_) == 1


def test_ctrl_c_that_stops_a_fit_says_nothing_was_saved(files, capsys, monkeypatch):
    path, _ = files
    press_ctrl_c_after_the_first_epoch(monkeypatch)
    # trainer__on_interrupt=raise, asked for explicitly, ends the command
    assert main(["fit", str(path / "events.csv"), "--model", "SASRec", "--set", "epochs=3",
                 "--set", "trainer__on_interrupt=raise", "--out", str(path / "m.skc"),
                 *COLUMNS]) == 130
    err = capsys.readouterr().err
    assert f"skcreate fit: interrupted; nothing was saved to {path / 'm.skc'}." in err
    assert "Traceback" not in err and not (path / "m.skc").exists()
