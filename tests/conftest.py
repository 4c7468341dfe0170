import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from skcreate.datasets import load_dataset, make_interactions

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def shared_data():
    """The shared benchmark data beside the checkout; its absence is a failure, not a skip."""
    if not (SHARED_DATA / "ml-100k.csv.gz").exists():
        pytest.fail(f"benchmark data not found at {SHARED_DATA}: clone the project with "
                    "shared/data beside it (see shared/data/README.md).")
    return SHARED_DATA


@pytest.fixture(scope="module")
def load_benchmark():
    """``load_benchmark(name)`` imports ``benchmarks/<name>.py``; the scripts share only
    :mod:`skcreate.benchmarking`, so nothing else is put on the path."""

    def load(name):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def ml100k(shared_data):
    return load_dataset("movielens-100k", data_home=shared_data)


@pytest.fixture(scope="session")
def synthetic():
    """Small sequential data with strong order structure."""
    return make_interactions(n_users=300, n_items=150, n_communities=4, mean_length=12,
                             random_state=0)


@pytest.fixture
def tiny():
    """Two users with string ids, a timestamp tie and an extra column."""
    return pd.DataFrame({
        "user_id": ["b", "a", "b", "a", "b", "a"],
        "item_id": ["x", "y", "z", "x", "w", "w"],
        "timestamp": [5, 2, 5, 1, 1, 3],
        "rating": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0],
    })
