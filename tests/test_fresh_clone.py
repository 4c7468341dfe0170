"""What a new user meets first: the test command without data, and a fast ``import``."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SKCREATE_DATA"}
    # no data home, and any download would hit a closed port instead of the network
    env.update(HOME=str(tmp_path), SKCREATE_MOVIELENS_100K_URL="http://127.0.0.1:9/ml.zip")
    return env


def test_collection_without_data_errors_nowhere_and_says_how_to_run_the_data_tests(tmp_path):
    # the README's test command, collection only, as on a fresh machine without ../shared
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q"], cwd=ROOT,
                         env=_clean_env(tmp_path), capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    summary = [line for line in run.stdout.splitlines() if " collected" in line]
    assert summary and "error" not in summary[-1], summary
    collected = [line for line in run.stdout.splitlines() if "::" in line]
    assert len(collected) > 300
    # the tests that read the benchmark data are left out, and the summary says how to run them
    assert not any("test_load_dataset_movielens_100k" in line for line in collected)
    assert not any("test_beauty_acceptance_counts" in line for line in collected)
    assert "need the benchmark data and were not collected" in out
    assert "--data DIR" in out


def test_data_option_collects_the_data_tests(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "data",
                          "--data", str(tmp_path / "data"), "tests/test_model_selection.py"],
                         cwd=ROOT, env=_clean_env(tmp_path), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test_beauty_acceptance_counts" in run.stdout
    assert "were not collected" not in run.stdout


def test_import_loads_no_heavy_dependency():
    code = ("import sys, skcreate; import skcreate.data.datasets, skcreate.data.model_selection; "
            "print(sorted(m for m in ('torch', 'implicit') if m in sys.modules)); "
            "from skcreate import SASRecRecommender; print('torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert run.stdout.split("\n")[:2] == ["[]", "True"]


def test_networks_load_numba_only_when_a_kernel_runs():
    # the compiled kernels are imported where they run (an optimiser step, a graph build)
    code = ("import sys, skcreate.nn, skcreate.estimators.graph; "
            "print('numba' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert run.stdout.strip() == "False"


def test_lazy_names_are_the_public_ones():
    import skcreate

    for name in skcreate.__all__:
        assert getattr(skcreate, name).__name__ == name
    assert set(skcreate.__all__) <= set(dir(skcreate))
    try:
        skcreate.NoSuchRecommender
    except AttributeError as exc:
        assert "NoSuchRecommender" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
