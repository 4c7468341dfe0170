"""benchmarks/size_sweep.py runs end to end on tiny sizes."""

import ast

import numpy as np
import pandas as pd
import pytest


def test_size_sweep_writes_csv_markdown_and_plot(tmp_path, load_benchmark):
    size_sweep = load_benchmark("size_sweep")
    out = tmp_path / "sweep"
    results = size_sweep.main(["--sizes", "600:60,2000:200,90000:9000", "--max-interactions",
                               "2000", "--models", "CREATE,CREATE-SCE", "--cap",
                               "CREATE-SCE=600", "--recommend-users", "20",
                               "--set", "CREATE.n_factors=8", "--set", "CREATE-SCE.n_factors=8",
                               "--set", "CREATE-SCE.loss__bucket_size_y=16", "--out", str(out)])

    table = pd.read_csv(out.with_suffix(".csv"))
    # the 90,000 size is above --max-interactions, 2,000 above the cap of CREATE-SCE
    assert len(results) == len(table) == 3
    assert table["model"].tolist() == ["CREATE", "CREATE-SCE", "CREATE"]
    assert table["interactions"].is_monotonic_increasing
    assert "error" not in table
    numbers = ["interactions", "items", "users", "s_per_epoch", "warmup_s", "users_per_s",
               "peak_mib", "start_mib", "fit_s", "wall_s"]
    assert (table[numbers] > 0).all().all()
    assert (table["peak_mib"] >= table["start_mib"]).all()
    assert (table["recommend_users"] == 20).all()  # fewer than the 30 and 100 users

    markdown = out.with_suffix(".md").read_text()
    assert "| model | interactions | items | users | s/epoch | warm-up s | users/s | peak MiB |" \
        in markdown
    assert markdown.count("| CREATE |") == 2 and markdown.count("| CREATE-SCE |") == 1
    assert out.with_suffix(".png").stat().st_size > 0


def test_size_sweep_times_graph_paths_side_by_side(tmp_path, load_benchmark):
    size_sweep = load_benchmark("size_sweep")
    out = tmp_path / "graph"
    size_sweep.main(["--sizes", "600:60,2000:200", "--models",
                     "LightGCN,LightGCN-full,CREATE-warmup,CREATE-warmup-full",
                     "--epochs", "2", "--recommend-users", "20",
                     "--set", "LightGCN.n_factors=8", "--set", "LightGCN-full.n_factors=8",
                     "--set", "CREATE-warmup.n_factors=8",
                     "--set", "CREATE-warmup-full.n_factors=8", "--out", str(out)])
    table = pd.read_csv(out.with_suffix(".csv"))
    assert "error" not in table and len(table) == 8
    warmup = table[table["model"].str.startswith("CREATE")]
    # the warm-up-only rows stop after their warm-up epochs: no joint epoch was run
    assert (warmup["epoch_seconds"].map(ast.literal_eval).map(len) == 2).all()
    assert (warmup["s_per_epoch"] == warmup["warmup_s"]).all()
    assert table.loc[table["model"] == "LightGCN-full", "params"].str.contains("full").all()
    markdown = out.with_suffix(".md").read_text()
    # one speed-up row per size and pair
    assert markdown.count("| LightGCN / LightGCN-full |") == 2
    assert markdown.count("| CREATE-warmup / CREATE-warmup-full |") == 2


def test_size_sweep_times_the_row_sparse_paths(tmp_path, load_benchmark):
    size_sweep = load_benchmark("size_sweep")
    out = tmp_path / "sparse"
    size_sweep.main(["--sizes", "2000:200", "--models",
                     "LightGCN,LightGCN-sparse,CREATE-warmup,CREATE-warmup-sparse",
                     "--recommend-users", "20", "--set", "LightGCN.n_factors=8",
                     "--set", "LightGCN-sparse.n_factors=8", "--set", "CREATE-warmup.n_factors=8",
                     "--set", "CREATE-warmup-sparse.n_factors=8", "--out", str(out)])
    table = pd.read_csv(out.with_suffix(".csv"))
    assert "error" not in table and len(table) == 4
    assert table.loc[table["model"].str.endswith("-sparse"), "params"].str.contains(
        "row_sparse").all()
    markdown = out.with_suffix(".md").read_text()
    assert markdown.count("| LightGCN-sparse / LightGCN |") == 1
    assert markdown.count("| CREATE-warmup-sparse / CREATE-warmup |") == 1


def test_size_sweep_resumes_and_refuses_other_settings(tmp_path, load_benchmark, monkeypatch):
    size_sweep = load_benchmark("size_sweep")
    out = tmp_path / "resumed"
    common = ["--recommend-users", "20", "--set", "LightGCN.n_factors=8",
              "--set", "CREATE-warmup.n_factors=8", "--out", str(out)]
    size_sweep.main(["--sizes", "600:60", "--models", "CREATE-warmup"] + common)
    first = pd.read_csv(out.with_suffix(".csv"))
    ran = []
    run_one = size_sweep.run_one
    monkeypatch.setattr(size_sweep, "run_one", lambda name, X, *args: ran.append(
        (name, len(X))) or run_one(name, X, *args))
    # a larger sweep over the same out: only the runs not in its CSV
    results = size_sweep.main(["--sizes", "600:60,2000:200", "--models",
                               "CREATE-warmup,LightGCN"] + common)
    assert [name for name, _ in ran] == ["LightGCN", "CREATE-warmup", "LightGCN"]
    table = pd.read_csv(out.with_suffix(".csv"))
    assert len(results) == len(table) == 4
    assert results["requested"].tolist() == ["600:60", "600:60", "2000:200", "2000:200"]
    kept = results[(results["model"] == "CREATE-warmup") & (results["requested"] == "600:60")]
    assert kept["wall_s"].tolist() == first["wall_s"].tolist()
    # nothing left to run: the same table again
    ran.clear()
    size_sweep.main(["--sizes", "600:60,2000:200", "--models", "CREATE-warmup,LightGCN"]
                    + common)
    assert ran == []
    with pytest.raises(SystemExit, match="holds a sweep of other settings"):
        size_sweep.main(["--sizes", "600:60", "--models", "LightGCN", "--epochs", "2"]
                        + common)


def test_slopes_and_speedups_from_a_known_table(load_benchmark):
    size_sweep = load_benchmark("size_sweep")
    sizes = [100_000, 1_000_000, 3_000_000]
    results = pd.DataFrame({
        "model": ["LightGCN"] * 3 + ["LightGCN-full"] * 2,
        "interactions": sizes + sizes[:2],
        "s_per_epoch": [1.0, 10.0, 30.0, 2.0, 200.0]})
    slopes = size_sweep.slopes(results).set_index("model")
    assert abs(slopes.loc["LightGCN", "slope"] - 1.0) < 1e-9
    assert abs(slopes.loc["LightGCN-full", "endpoint_slope"] - 2.0) < 1e-9
    ratios = size_sweep.speedups(results)
    assert ratios["speedup"].tolist() == [2.0, 20.0]


def test_size_sweep_times_the_scalable_graph_paths(tmp_path, load_benchmark):
    size_sweep = load_benchmark("size_sweep")
    out = tmp_path / "scale"
    models = ["LightGCN-historical", "UltraGCN-sparse", "CREATE-warmup-historical",
              "CREATE-SCE-historical"]
    size_sweep.main(["--sizes", "2000:200", "--models", ",".join(models),
                     "--recommend-users", "20", "--out", str(out)]
                    + [arg for name in models for arg in ("--set", f"{name}.n_factors=8")])
    table = pd.read_csv(out.with_suffix(".csv"))
    assert "error" not in table and sorted(table["model"]) == sorted(models)
    historical = table[table["model"].str.endswith("-historical")]
    assert historical["params"].str.contains("historical").all()
    # the joint epoch runs after its one warm-up epoch; the warm-up model stops after it
    create = table.set_index("model")
    assert create.loc["CREATE-SCE-historical", "warmup_s"] > 0


def test_a_fresh_process_reports_its_own_peak_memory(load_benchmark):
    # the fixture puts benchmarks/ on the path, where the spawned child imports it too
    import _common

    # the parent's peak passes 2 GiB; a child's ru_maxrss would inherit it across fork and exec
    block = np.ones(2**28)
    del block
    parent = _common.peak_mib()
    child = _common.in_fresh_process(_common.peak_mib)
    assert parent > 2048
    assert child < parent - 1024


def test_models_other_than_the_defaults_fit_as_before_auto(load_benchmark, monkeypatch):
    size_sweep = load_benchmark("size_sweep")
    import _common
    from skcreate import LightGCNRecommender
    from skcreate.data.datasets import make_interactions
    from skcreate.nn import GraphEncoder
    monkeypatch.setattr(GraphEncoder, "large_graph", GraphEncoder.large_graph)  # restored after
    X = make_interactions(n_users=100, n_items=50, random_state=0)
    for large_graph, row_sparse in [(10, True), (float("inf"), False)]:
        model = LightGCNRecommender(n_factors=8, epochs=1, random_state=0)
        _common.fit_and_time(model, X, X.head(20), 5, large_graph)
        assert model.module_.encoder._row_sparse == row_sparse
    calls = []
    monkeypatch.setattr(size_sweep, "in_fresh_process",
                        lambda function, *args: calls.append(args[-1]) or {"error": "-"})
    for name in ["LightGCN", "LightGCN-exact", "CREATE-warmup", "CREATE-warmup-historical"]:
        size_sweep.run_one(name, X, {"epochs": 1}, 5, 0)
    assert calls == [None, float("inf"), None, float("inf")]
