"""benchmarks/ablation.py: one-at-a-time CREATE sweeps, on synthetic data with tiny settings."""

from pathlib import Path

import pandas as pd
import pytest

METRICS = ["ndcg@10", "recall@10", "coverage@10", "ndcg@100"]


@pytest.fixture(scope="module")
def ablation(load_benchmark):
    return load_benchmark("ablation")


@pytest.fixture(scope="module")
def run(ablation, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation") / "synthetic"
    ablation.main([
        "--dataset", "synthetic:200:60", "--set", "epochs=1", "--set", "n_factors=8",
        "--set", "warmup_epochs=2", "--sweep", "alignment=barlow,none",
        "--sweep", "warmup_epochs=0", "--out", str(out)])
    return out


def test_writes_every_output(run):
    for suffix in (".md", ".csv", ".png"):
        assert Path(f"{run}{suffix}").stat().st_size > 0, suffix


def test_rows_per_configuration(run):
    results = pd.read_csv(f"{run}.csv", keep_default_na=False)
    assert list(zip(results.model, results.sweep, results.value.astype(str))) == [
        ("SASRec", "", ""), ("CREATE", "", ""), ("CREATE", "alignment", "barlow"),
        ("CREATE", "alignment", "none"), ("CREATE", "warmup_epochs", "0")]
    assert results[METRICS].apply(lambda col: col.between(0, 1)).all().all()


def test_base_value_reuses_the_base_fit(run):
    results = pd.read_csv(f"{run}.csv", keep_default_na=False)
    base = results[(results.model == "CREATE") & (results.sweep == "")].iloc[0]
    barlow = results[results.value == "barlow"].iloc[0]
    assert barlow[METRICS + ["fit_s"]].tolist() == base[METRICS + ["fit_s"]].tolist()
    assert "(base)" in Path(f"{run}.md").read_text()


def test_unknown_sweep_parameter_fails_before_fitting(ablation, tmp_path):
    with pytest.raises(ValueError, match="no parameter 'warmup'"):
        ablation.main(["--dataset", "synthetic:200:60", "--sweep", "warmup=0,10",
                       "--out", str(tmp_path / "bad")])
    assert not list(tmp_path.iterdir())


def test_several_seeds_give_mean_and_spread(ablation, tmp_path):
    out = tmp_path / "seeds"
    ablation.main([
        "--dataset", "synthetic:200:60", "--set", "epochs=1", "--set", "n_factors=8",
        "--set", "warmup_epochs=1", "--sweep", "alignment__stop_gradient=None,graph",
        "--seeds", "0", "1", "--out", str(out)])
    results = pd.read_csv(f"{out}.csv", keep_default_na=False)
    assert results.groupby("seed").size().to_dict() == {0: 4, 1: 4}
    text = Path(f"{out}.md").read_text()
    assert "mean ± std over seeds" in text and " ± " in text.split("\n")[4]
    assert Path(f"{out}.png").stat().st_size > 0
