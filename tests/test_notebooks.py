"""Execute the notebooks of docs/notebooks with tiny settings and check what they report.

Each notebook ends with a cell printing a JSON summary of its results; the test parses it.
The kernel is the Python running the tests, importing this checkout's skcreate.
"""

import json
import math
import os
import socket
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "docs" / "notebooks"

# read by the notebooks' first cell; the defaults are the full-size runs
SMALL = {
    "SKCREATE_NB_EPOCHS": "1",
    "SKCREATE_NB_WARMUP": "1",
    "SKCREATE_NB_FACTORS": "16",
    "SKCREATE_NB_ALS_ITERATIONS": "3",
    "SKCREATE_NB_BPR_ITERATIONS": "10",
}

# appended to the executed copy only: which interpreter and which skcreate the kernel ran
PROBE = "import json, sys, skcreate\nprint(json.dumps([sys.executable, skcreate.__file__]))"


def _stdout(cell):
    return "".join(out.get("text", "") for out in cell.get("outputs", [])
                   if out.output_type == "stream" and out.name == "stdout")


def _kernelspec(root):
    """A 'python3' kernelspec that starts this interpreter, ahead of any other on JUPYTER_PATH."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tests)", "language": "python"}))
    return root


def run_notebook(name, data_home, monkeypatch, tmp_path):
    """Execute a notebook from its own directory on the data in data_home; return its summary."""
    for key, value in SMALL.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SKCREATE_DATA", str(data_home))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec(tmp_path / "jupyter")))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    NotebookClient(nb, timeout=300, startup_timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{name}: {out.ename}: {out.evalue}"
            # importing skcreate must not print tqdm's notebook warning (implicit imports it)
            assert "IProgress" not in out.get("text", ""), name
    executable, package = json.loads(_stdout(nb.cells[-1]))
    assert Path(executable).resolve() == Path(sys.executable).resolve()
    assert Path(package).resolve() == REPO / "skcreate" / "__init__.py"
    return json.loads(_stdout(nb.cells[-2]))


def _fraction(value):
    return isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0


def test_quickstart(shared_data, monkeypatch, tmp_path):
    summary = run_notebook("quickstart.ipynb", shared_data, monkeypatch, tmp_path)
    assert summary["dataset"] == "movielens-100k"
    assert summary["test_users"] > 50
    assert set(summary["metrics"]) == {"ndcg@10", "recall@10", "coverage@10"}
    assert all(_fraction(v) for v in summary["metrics"].values())
    assert summary["metrics"]["coverage@10"] > 0
    assert summary["new_user_in_train"] is False
    assert summary["new_user_recommendations"] == 10
    assert summary["new_user_recommends_seen"] is False


@pytest.mark.parametrize("name", ["quickstart.ipynb", "implicit_comparison.ipynb",
                                  "grid_search.ipynb"])
def test_knobs_first_and_synthetic_fallback(name, monkeypatch, tmp_path, capsys):
    """All knobs sit in the first code cell; without data the loading cell falls back to
    synthetic data. Both cells are plain Python, run here without a kernel."""
    code = [cell.source for cell in nbformat.read(NOTEBOOKS / name, as_version=4).cells
            if cell.cell_type == "code"]
    assert "os.environ" in code[0] and not any("os.environ" in source for source in code[1:])
    monkeypatch.setenv("SKCREATE_DATA", str(tmp_path / "no-data"))
    # offline for sure: a loopback port nobody listens on
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SKCREATE_MOVIELENS_100K_URL", f"http://127.0.0.1:{port}/ml-100k.zip")
    namespace = {}
    for source in code[:2]:
        exec(compile(source, name, "exec"), namespace)
    assert namespace["DATASET"] == "synthetic"
    assert "make_interactions" in capsys.readouterr().out
    assert list(namespace["X"].columns) == ["user_id", "item_id", "timestamp"]


def test_implicit_comparison(shared_data, monkeypatch, tmp_path):
    summary = run_notebook("implicit_comparison.ipynb", shared_data, monkeypatch, tmp_path)
    assert summary["dataset"] == "movielens-100k"
    results = summary["results"]
    assert set(results) == {"implicit ALS", "implicit BPR", "Popular", "ALSRecommender",
                            "BPRRecommender", "SASRec", "CREATE"}
    for name, row in results.items():
        assert _fraction(row["ndcg"]) and _fraction(row["recall"]), name
        assert row["ndcg"] <= row["recall"], name  # one target per user
        assert row["users"] == summary["test_users"], name  # same users for every model


def test_grid_search(shared_data, monkeypatch, tmp_path):
    summary = run_notebook("grid_search.ipynb", shared_data, monkeypatch, tmp_path)
    assert summary["dataset"] == "movielens-100k"
    grid = summary["grid"]
    assert set(summary["best_params"]) == set(grid)
    assert all(summary["best_params"][key] in values for key, values in grid.items())
    n_candidates = math.prod(len(values) for values in grid.values())
    assert len(summary["cv_scores"]) == n_candidates
    assert all(_fraction(score) for score in summary["cv_scores"])
    assert summary["best_validation_ndcg@10"] == max(summary["cv_scores"])
    assert _fraction(summary["test_ndcg@10"])
