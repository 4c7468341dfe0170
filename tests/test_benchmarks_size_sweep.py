"""benchmarks/size_sweep.py runs end to end on tiny sizes."""

import pandas as pd


def test_size_sweep_writes_csv_markdown_and_plot(tmp_path, load_benchmark):
    size_sweep = load_benchmark("size_sweep")
    out = tmp_path / "sweep"
    results = size_sweep.main(["--sizes", "600:60,2000:200,90000:9000", "--max-interactions",
                               "2000", "--models", "CREATE,CREATE-SCE", "--cap",
                               "CREATE-SCE=600", "--recommend-users", "20",
                               "--set", "CREATE.n_factors=8", "--set", "CREATE-SCE.n_factors=8",
                               "--set", "CREATE-SCE.sce_bucket_size_y=16", "--out", str(out)])

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
