"""benchmarks/step_times.py, graph_steps.py, step_rows.py and epoch_steps.py run end to end on
tiny sizes."""

import numpy as np


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


def test_step_rows_counts_distinct_rows_of_every_step(load_benchmark, tmp_path):
    from skcreate.nn.optim import LazyAdam
    update = LazyAdam._sparse_update
    step_rows = load_benchmark("step_rows")
    table = step_rows.main(["--sizes", "20000:500,40000:1000", "--out", str(tmp_path / "rows")])
    assert LazyAdam._sparse_update is update
    assert list(table.model) == step_rows.SCALABLE * 2
    lightgcn = table[table.model == "LightGCN-historical"]
    # one step per batch of 2,048 edges, each updating at most every node once
    assert (lightgcn.steps == [-(-n // 2048) for n in lightgcn.interactions]).all()
    assert (table.rows_per_step <= table.nodes).all() and (table.rows_per_step > 0).all()
    assert np.allclose(table.row_updates, table.rows_per_step * table.steps)
    # a light warm-up step updates its own rows only: fewer than the full one's, on the same
    # batches
    warmup = table[table.model.str.startswith("CREATE")].pivot(
        index="interactions", columns="model", values="rows_per_step")
    assert (warmup["CREATE-warmup-historical-light"] < warmup["CREATE-warmup-historical"]).all()
    assert "row updates an epoch" in (tmp_path / "rows.md").read_text()


def test_step_rows_refuses_a_model_without_row_sparse_updates(load_benchmark, tmp_path):
    step_rows = load_benchmark("step_rows")
    try:
        step_rows.main(["--sizes", "2000:100", "--models", "LightGCN",
                        "--out", str(tmp_path / "rows")])
    except SystemExit as exc:
        assert "no row-sparse update" in str(exc)
    else:
        raise AssertionError("no error for a model below the scalable mode's threshold")


def test_epoch_steps_reports_each_epoch_by_tenths(load_benchmark, capsys):
    load_benchmark("epoch_steps").main(["--model", "UltraGCN", "--interactions", "30000",
                                        "--items", "500", "--epochs", "2"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ")][1:]
    assert [row[:2] for row in rows] == [["| 1", "ms per step"], ["| 1", "minor faults per step"],
                                         ["| 2", "ms per step"], ["| 2", "minor faults per step"]]
    for row in rows:
        values = [float(cell.replace(",", "")) for cell in row[2].strip(" |").split(", ")]
        # 29,418 interactions in batches of 1,024: 29 steps an epoch, 28 timed, in tenths
        assert len(values) == 10 and min(values) >= 0
    assert min(float(cell) for cell in rows[0][2].strip(" |").split(", ")) > 0
