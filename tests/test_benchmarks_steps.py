"""benchmarks/step_times.py and graph_steps.py run end to end on tiny sizes."""

from skcreate.nn import optim


def test_step_times_reports_every_model_under_each_coalescing(load_benchmark, capsys):
    step_times = load_benchmark("step_times")
    coalesce_rows = optim.coalesce_rows
    rows = step_times.main(["--interactions", "20000", "--items", "500", "--steps", "4",
                            "--skip", "1", "--coalesce", "torch", "rows"])
    assert [(row["model"], row["coalesce"]) for row in rows] == [
        (name, way) for name in step_times.MODELS for way in ("torch", "rows")]
    assert all(row["ms"] > 0 for row in rows)
    # the baseline is patched in for its runs only
    assert optim.coalesce_rows is coalesce_rows
    table = capsys.readouterr().out
    assert "| CREATE-SCE-joint | joint | rows |" in table


def test_step_times_refuses_more_steps_than_a_stage_has(load_benchmark):
    step_times = load_benchmark("step_times")
    try:
        step_times.main(["--interactions", "300", "--items", "30", "--models", "LightGCN",
                         "--steps", "50", "--skip", "1"])
    except SystemExit as exc:
        assert "lower --steps" in str(exc)
    else:
        raise AssertionError("no error for a stage shorter than --steps")


def test_graph_steps_reports_each_fanout(load_benchmark, capsys):
    load_benchmark("graph_steps").main(["--interactions", "20000", "--items", "500",
                                        "--fanouts", "1", "3", "--steps", "4", "--skip", "1"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in lines[1:]] == ["| 1", "| 3"]
