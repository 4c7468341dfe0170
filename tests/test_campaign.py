"""benchmarks/campaign.py: a resumable plan of runs x seeds, on synthetic data with tiny settings.

One real campaign (4 tiny fits) is shared by the module; the resume, interruption and split
tests replace ``evaluate_model`` by a fake that fits nothing and records its calls.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skcreate import CREATERecommender, SASRecRecommender
from skcreate.data.model_selection import GlobalTemporalSplit

DATASET = "synthetic:200:60"
METRICS = ["ndcg@10", "recall@10", "coverage@10", "ndcg@100"]
RUNS = {"a": {"epochs": 1, "n_factors": 8, "warmup_epochs": 1},
        "s": {"model": "SASRec", "epochs": 1, "n_factors": 8}}
SEEDS = [0, 1]
ALL = {(run, seed) for run in RUNS for seed in SEEDS}


def write_plan(path, runs=RUNS, split="validation", seeds=SEEDS, **extra):
    path.write_text(json.dumps({"dataset": DATASET, "split": split, "seeds": seeds,
                                "runs": runs, **extra}))
    return path


def finished(out):
    rows = pd.read_csv(f"{out}.csv", keep_default_na=False)
    return list(zip(rows.run.astype(str), rows.seed))


class FakeEvaluate:
    """Stands in for ``evaluate_model``: no fit, fixed metrics; records every call, and raises
    ``raise_with`` at call number ``raise_at`` (from 1) when given."""

    def __init__(self, raise_at=None, raise_with=KeyboardInterrupt):
        self.calls = []
        self.raise_at = raise_at
        self.raise_with = raise_with

    def __call__(self, model, train, evaluation, catalog):
        self.calls.append((model, train, evaluation, catalog))
        if self.raise_at is not None and len(self.calls) == self.raise_at:
            raise self.raise_with()
        return {"ndcg@10": 0.25, "recall@10": 0.5, "coverage@10": 0.125, "ndcg@100": 0.375,
                "fit_s": 0.5, "epochs": 1}

    @property
    def fitted(self):
        """(run kind, seed) of each call: the model class and its random_state."""
        return [(type(call[0]), call[0].random_state) for call in self.calls]


@pytest.fixture(scope="module")
def campaign_module(load_benchmark):
    return load_benchmark("campaign")


@pytest.fixture(scope="module")
def campaign_run(campaign_module, tmp_path_factory):
    """A real campaign of the tiny plan: (plan, out, argv)."""
    root = tmp_path_factory.mktemp("campaign")
    plan = write_plan(root / "plan.json")
    out = root / "results" / "tiny"
    argv = [str(plan), "--out", str(out)]
    campaign_module.main(argv)
    return plan, out, argv


@pytest.fixture
def campaign(load_benchmark, monkeypatch):
    """A fresh copy of the script whose ``evaluate_model`` is a fake."""
    module = load_benchmark("campaign")
    fake = FakeEvaluate()
    monkeypatch.setattr(module, "evaluate_model", fake)
    return module, fake


def test_full_run_writes_one_row_per_run_and_seed_and_a_table(campaign_run):
    plan, out, argv = campaign_run
    results = pd.read_csv(f"{out}.csv", keep_default_na=False)
    assert sorted(zip(results.run, results.seed)) == sorted(ALL)
    assert results[METRICS].apply(lambda col: col.between(0, 100)).all().all()
    # scored for real: not every metric is zero
    assert (results[METRICS] > 0).any().any()
    assert set(results.model) == {"CREATE", "SASRec"}
    assert (results.dataset == DATASET).all() and (results.split == "validation").all()
    assert (results.command == " ".join(["python", "benchmarks/campaign.py", *argv])).all()
    for run, params in zip(results.run, results.params):
        expected = {k: v for k, v in RUNS[run].items() if k != "model"}
        assert json.loads(params) == expected
    lines = Path(f"{out}.md").read_text().splitlines()
    table = [line for line in lines if line.startswith("| ")]
    rows = {line.split(" | ")[0][2:]: line for line in table[1:]}
    assert set(rows) == set(RUNS) and len(table) == 1 + len(RUNS)
    for row in rows.values():
        # four metrics, each a mean ± std over the two seeds, then the seeds
        assert row.count(" ± ") == len(METRICS)
        assert row.rstrip(" |").endswith("0, 1")


def test_rerun_fits_nothing_and_deleted_row_is_fitted_again(campaign_run, campaign, tmp_path):
    module, fake = campaign
    plan, out, _ = campaign_run
    copy = tmp_path / "tiny"
    shutil.copy(f"{out}.csv", f"{copy}.csv")
    before = Path(f"{copy}.csv").read_bytes()
    module.main([str(plan), "--out", str(copy)])
    assert fake.calls == []
    assert Path(f"{copy}.csv").read_bytes() == before
    assert Path(f"{copy}.md").exists()

    # drop the row of (s, 0): only that fit is done again
    lines = before.decode().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith("s,0,")]
    assert len(kept) == len(lines) - 1
    Path(f"{copy}.csv").write_text("".join(kept))
    module.main([str(plan), "--out", str(copy)])
    assert fake.fitted == [(SASRecRecommender, 0)]
    assert sorted(finished(copy)) == sorted(ALL)
    assert Path(f"{copy}.csv").read_text().startswith("".join(kept))


def test_interrupted_campaign_keeps_finished_rows_and_resumes(campaign, tmp_path):
    module, fake = campaign
    plan = write_plan(tmp_path / "plan.json")
    out = tmp_path / "out"
    fake.raise_at = 3
    with pytest.raises(KeyboardInterrupt):
        module.main([str(plan), "--out", str(out)])
    assert len(fake.calls) == 3
    # seeds outermost: both runs at seed 0 finished, nothing of the interrupted fit
    assert finished(out) == [("a", 0), ("s", 0)]
    assert Path(f"{out}.csv").read_text().endswith("\n")
    assert len(Path(f"{out}.csv").read_text().splitlines()) == 3

    fake.raise_at = None
    fake.calls.clear()
    module.main([str(plan), "--out", str(out)])
    assert fake.fitted == [(CREATERecommender, 1), (SASRecRecommender, 1)]
    assert finished(out) == [("a", 0), ("s", 0), ("a", 1), ("s", 1)]


def test_line_cut_off_mid_write_is_dropped_and_fitted_again(campaign, tmp_path):
    module, fake = campaign
    plan = write_plan(tmp_path / "plan.json")
    out = tmp_path / "out"
    module.main([str(plan), "--out", str(out)])
    lines = Path(f"{out}.csv").read_text().splitlines(keepends=True)
    assert lines[-1].startswith("s,1,")
    # the last row half written: no newline at its end
    Path(f"{out}.csv").write_text("".join(lines[:-1]) + lines[-1][:len(lines[-1]) // 2])

    fake.calls.clear()
    module.main([str(plan), "--out", str(out)])
    assert fake.fitted == [(SASRecRecommender, 1)]
    text = Path(f"{out}.csv").read_text()
    assert text.startswith("".join(lines[:-1])) and text.endswith("\n")
    assert len(text.splitlines()) == len(lines)
    assert sorted(finished(out)) == sorted(ALL)


def test_first_line_cut_off_starts_afresh(campaign, tmp_path):
    module, fake = campaign
    plan = write_plan(tmp_path / "plan.json", seeds=[0])
    out = tmp_path / "out"
    Path(f"{out}.csv").write_text("run,seed,mod")
    module.main([str(plan), "--out", str(out)])
    assert sorted(finished(out)) == [("a", 0), ("s", 0)]


def test_changed_parameters_are_refused_before_any_fit(campaign, tmp_path):
    module, fake = campaign
    out = tmp_path / "out"
    module.main([str(write_plan(tmp_path / "plan.json")), "--out", str(out)])
    before = Path(f"{out}.csv").read_bytes()
    changed = dict(RUNS, a={**RUNS["a"], "warmup_epochs": 2})
    plan = write_plan(tmp_path / "changed.json", runs=changed, seeds=[0, 1, 2])
    fake.calls.clear()
    with pytest.raises(SystemExit, match="'a'"):
        module.main([str(plan), "--out", str(out)])
    assert fake.calls == []
    assert Path(f"{out}.csv").read_bytes() == before
    # the unchanged run alone may go on
    module.main([str(plan), "--out", str(out), "--only", "s"])
    assert fake.fitted == [(SASRecRecommender, 2)]


def test_numeric_run_names_are_resumed_and_checked(campaign, tmp_path):
    module, fake = campaign
    out = tmp_path / "out"
    runs = {"01": {"epochs": 1}}
    module.main([str(write_plan(tmp_path / "plan.json", runs=runs)), "--out", str(out)])
    fake.calls.clear()
    module.main([str(write_plan(tmp_path / "plan.json", runs=runs)), "--out", str(out)])
    assert fake.calls == []
    changed = write_plan(tmp_path / "changed.json", runs={"01": {"epochs": 2}})
    with pytest.raises(SystemExit, match="'01'"):
        module.main([str(changed), "--out", str(out)])


@pytest.mark.parametrize("change, message", [
    ({"extra": 1}, "unknown plan keys.*extra"),
    ({"split": "train"}, "'split' must be.*'train'"),
    ({"runs": {"g": {"model": "GRU4Rec"}}}, "'g' has model 'GRU4Rec'"),
    ({"runs": {"a": {"epochs": 1, "n_factor": 8}}}, "n_factor"),
    ({"runs": {"s": {"model": "SASRec", "alignment": "none"}}}, "alignment"),
])
def test_plan_errors_name_the_problem(campaign, tmp_path, change, message):
    module, fake = campaign
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"dataset": DATASET, "split": "validation", "seeds": [0],
                                "runs": RUNS, **change}))
    with pytest.raises(ValueError, match=message):
        module.main([str(plan), "--out", str(tmp_path / "results" / "out")])
    assert fake.calls == []
    assert not (tmp_path / "results").exists()


def test_only_with_unknown_run_exits(campaign, tmp_path):
    module, fake = campaign
    plan = write_plan(tmp_path / "plan.json")
    with pytest.raises(SystemExit, match=r"--only.*\['b'\]"):
        module.main([str(plan), "--out", str(tmp_path / "out"), "--only", "a", "b"])
    assert fake.calls == []


def test_only_restricts_the_runs(campaign, tmp_path):
    module, fake = campaign
    out = tmp_path / "out"
    module.main([str(write_plan(tmp_path / "plan.json")), "--out", str(out), "--only", "s"])
    assert fake.fitted == [(SASRecRecommender, 0), (SASRecRecommender, 1)]
    assert finished(out) == [("s", 0), ("s", 1)]


def test_validation_split_never_reads_the_test_period(campaign, tmp_path):
    module, fake = campaign
    plan = write_plan(tmp_path / "plan.json", runs={"a": RUNS["a"]}, seeds=[0])
    module.main([str(plan), "--out", str(tmp_path / "out")])
    (_, train, evaluation, catalog), = fake.calls
    X = module.load_data(DATASET)
    assert catalog == X["item_id"].nunique()
    threshold, = GlobalTemporalSplit(0.8).thresholds(X)
    outer_idx, test_idx = next(GlobalTemporalSplit(0.8).split(X))
    test_only = X.index[np.setdiff1d(test_idx, outer_idx)]
    assert len(test_only) and (X.loc[test_only, "timestamp"] > threshold).all()
    for frame in (train, evaluation):
        assert len(frame)
        assert (frame["timestamp"] <= threshold).all()
        assert not frame.index.isin(test_only).any()
        # rows of X, unchanged
        pd.testing.assert_frame_equal(frame, X.loc[frame.index])
    # the validation users are scored on their own last outer-train event, not in train
    last = evaluation.sort_values("timestamp", kind="stable").groupby("user_id").tail(1)
    assert not last.index.isin(train.index).any()


def test_test_split_trains_on_the_outer_train(campaign, tmp_path):
    module, fake = campaign
    plan = write_plan(tmp_path / "plan.json", runs={"a": RUNS["a"]}, seeds=[0], split="test")
    out = tmp_path / "out"
    module.main([str(plan), "--out", str(out)])
    (_, train, evaluation, _), = fake.calls
    X = module.load_data(DATASET)
    outer_idx, test_idx = next(GlobalTemporalSplit(0.8).split(X))
    pd.testing.assert_frame_equal(train, X.iloc[outer_idx])
    pd.testing.assert_frame_equal(evaluation, X.iloc[test_idx])
    assert "trained on the outer train" in Path(f"{out}.md").read_text()


def test_figure_plots_each_parameter_over_the_runs_that_change_it_alone(campaign, tmp_path):
    module, fake = campaign
    runs = {"defaults": {}, "w=0.1": {"alignment_weight": 0.1},
            "w=1": {"alignment_weight": 1.0}, "warm=0": {"warmup_epochs": 0},
            "both": {"alignment_weight": 0.1, "warmup_epochs": 0},
            "sasrec": {"model": "SASRec"}}
    plan = write_plan(tmp_path / "plan.json", runs=runs, seeds=[0, 1])
    out = tmp_path / "sweep"
    module.main([str(plan), "--out", str(out), "--figure", "alignment_weight",
                 "warmup_epochs"])
    assert (tmp_path / "sweep.png").stat().st_size > 0
    results = module.read_results(tmp_path / "sweep.csv")
    points, default = module.sweep_points(results, "alignment_weight")
    # the run changing two parameters and SASRec are in neither panel
    assert default == "0.05" and sorted(points, key=module._value_order) == ["0.05", "0.1", "1.0"]
    assert all(len(values) == 2 for values in points.values())
    points, default = module.sweep_points(results, "warmup_epochs")
    assert default == "60" and sorted(points, key=module._value_order) == ["0", "60"]
