"""benchmarks/reproduce.py: the Table-2 command, on synthetic data with tiny settings."""

import ast
from pathlib import Path

import pandas as pd
import pytest

from skcreate import ALSRecommender, CREATERecommender


@pytest.fixture(scope="module")
def reproduce(load_benchmark):
    return load_benchmark("reproduce")


@pytest.fixture(scope="module")
def run(reproduce, tmp_path_factory):
    out = tmp_path_factory.mktemp("table2") / "synthetic"
    reproduce.main([
        "--dataset", "synthetic:2000:500", "--models", "Popular,ALS,SASRec,CREATE",
        "--seeds", "0", "1",
        "--set", "SASRec.epochs=3", "--set", "SASRec.n_factors=16",
        "--set", "CREATE.epochs=3", "--set", "CREATE.n_factors=16",
        "--set", "CREATE.warmup_epochs=1",
        "--sweep", "ALS.regularization=0.01,1.0",
        "--sweep", "CREATE.alignment_weight=0.01,0.1",
        "--no-tune", "SASRec", "--out", str(out)])
    return out


def test_writes_every_output(run):
    for suffix in (".md", ".csv", "-tuning.csv", "-curves.png", "-sweeps.png"):
        assert Path(f"{run}{suffix}").stat().st_size > 0, suffix


def test_test_rows_per_model_and_seed(run):
    results = pd.read_csv(f"{run}.csv")
    assert sorted(results.groupby("model").size().items()) == [
        ("ALS", 2), ("CREATE", 2), ("Popular", 2), ("SASRec", 2)]
    for col in ("ndcg@10", "recall@10", "coverage@10", "ndcg@100", "recall@100"):
        assert results[col].between(0, 1).all(), col
    # recall can only grow with k
    assert (results["recall@100"] >= results["recall@10"]).all()


def test_tuning_picks_the_validation_best(run):
    tuning = pd.read_csv(f"{run}-tuning.csv")
    create = tuning[tuning.model == "CREATE"]
    sweep = create[create.sweep == "alignment_weight"]
    assert sorted(sweep["value"].astype(float)) == [0.01, 0.1]
    best = create.loc[create["val_ndcg@10"].idxmax()]
    results = pd.read_csv(f"{run}.csv")
    chosen = ast.literal_eval(results.loc[results.model == "CREATE", "params"].iloc[0])
    # retrained for the early-stopping epochs of the winning configuration
    assert chosen["epochs"] == max(int(best["best_epoch"]), 1)
    if best["sweep"] == "alignment_weight":
        assert chosen["alignment_weight"] == float(best["value"])
    # untuned models keep their given parameters and never enter the tuning table
    assert "SASRec" not in set(tuning.model)
    assert ast.literal_eval(results.loc[results.model == "SASRec", "params"].iloc[0]) == {
        "epochs": 3, "n_factors": 16}


def test_report_has_table_gain_and_command(run):
    text = Path(f"{run}.md").read_text()
    assert "| CREATE | " in text and "±" in text
    assert "CREATE over SASRec, test NDCG@10" in text
    assert "--dataset synthetic:2000:500" in text


def test_tuning_sees_only_train(reproduce):
    X = reproduce.load_data("synthetic:2000:500", None)
    train_idx, _ = next(reproduce.GlobalTemporalSplit(0.8).split(X))
    train = X.iloc[train_idx]
    tuner = reproduce.Tuner("ALS", ALSRecommender(), train, 500, 0, print)
    assert set(tuner.inner.index) | set(tuner.valid.index) <= set(train.index)
    assert tuner.inner["timestamp"].max() <= tuner.valid["timestamp"].max()


@pytest.mark.parametrize("winner, swept", [("none", False), ("barlow", True)])
def test_weight_sweep_skipped_when_alignment_is_off(reproduce, winner, swept):
    tuner = reproduce.Tuner("CREATE", CREATERecommender(), None, 500, 0, lambda message: None)
    seen = []

    def evaluate(params):
        seen.append(dict(params))
        return {"score": float(params.get("alignment") == winner), "epochs": 1, "model": None,
                "fit_s": 0.0}

    tuner.evaluate = evaluate
    best, _ = tuner.tune([("alignment", ["none", "barlow"]),
                          ("alignment_weight", [0.01, 0.1])])
    assert best == {"alignment": winner}
    weights = [p["alignment_weight"] for p in seen if "alignment_weight" in p]
    assert weights == ([0.01, 0.1] if swept else [])


def test_bad_model_option_names_it(reproduce):
    with pytest.raises(SystemExit, match="Nope.epochs"):
        reproduce.main(["--dataset", "synthetic:2000:500", "--set", "Nope.epochs=3"])


def test_transformers_share_the_epoch_budget(reproduce):
    fixed = reproduce.fixed_params(["ALS", "SASRec", "CREATE"], budget=20)
    assert fixed == {"SASRec": {"epochs": 20}, "CREATE": {"epochs": 20}}
    # --quick, then --set, override the budget
    fixed = reproduce.fixed_params(["SASRec", "CREATE"], budget=20, quick=True,
                                   sets=["CREATE.epochs=5", "SASRec.dropout=0.5"])
    assert fixed == {"SASRec": {"epochs": 10, "dropout": 0.5}, "CREATE": {"epochs": 5}}


def test_optuna_studies_share_one_trial_budget(reproduce, tmp_path):
    import optuna

    out = tmp_path / "optuna"
    reproduce.main([
        "--dataset", "synthetic:800:200", "--models", "SASRec,CREATE", "--seeds", "0",
        "--set", "SASRec.epochs=2", "--set", "SASRec.n_factors=8",
        "--set", "CREATE.epochs=2", "--set", "CREATE.n_factors=8",
        "--set", "CREATE.warmup_epochs=1", "--tuner", "optuna", "--trials", "2",
        "--out", str(out)])
    tuning = pd.read_csv(f"{out}-tuning.csv")
    assert tuning.groupby("model").size().to_dict() == {"CREATE": 2, "SASRec": 2}
    for model in ("SASRec", "CREATE"):
        study = optuna.load_study(study_name=model, storage=f"sqlite:///{out}-optuna.db")
        assert len(study.trials) == 2
        # the package defaults are the first trial
        defaults = CREATERecommender().get_params() if model == "CREATE" else None
        if defaults:
            assert study.trials[0].params["alignment"] == defaults["alignment"]
        rows = tuning[tuning.model == model]
        assert study.best_value == pytest.approx(rows["val_ndcg@10"].max())
        # a trial without an alignment samples no alignment weight
        for trial in study.trials:
            if trial.params.get("alignment") == "none":
                assert "alignment_weight" not in trial.params
    assert Path(f"{out}-optuna.png").stat().st_size > 0
