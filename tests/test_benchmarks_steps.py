"""benchmarks/step_times.py and graph_steps.py run end to end on tiny sizes."""


def test_step_times_reports_every_model_each_repeat(load_benchmark, capsys):
    step_times = load_benchmark("step_times")
    rows = step_times.main(["--interactions", "20000", "--items", "500", "--steps", "4",
                            "--skip", "1", "--repeat", "2"])
    assert [row["model"] for row in rows] == list(step_times.MODELS) * 2
    assert all(row["ms"] > 0 for row in rows)
    table = capsys.readouterr().out
    assert table.count("| CREATE-SCE-joint | joint |") == 2
    assert "| CREATE-SCE-warmup | warmup |" in table


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
    assert [line.split(" | ")[:2] for line in lines[1:]] == [["| 1", "1"], ["| 3", "3"]]


def test_graph_steps_reports_each_number_of_walks(load_benchmark, capsys):
    load_benchmark("graph_steps").main(["--interactions", "20000", "--items", "500",
                                        "--fanouts", "3", "--walks", "1", "2", "--steps", "4",
                                        "--skip", "1"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    rows = [line.split(" | ") for line in lines[1:]]
    assert [row[:2] for row in rows] == [["| 3", "1"], ["| 3", "2"]]
    # fewer walks, fewer rows read
    assert float(rows[0][3].strip(" |").replace(",", "")) < \
        float(rows[1][3].strip(" |").replace(",", ""))
