import functools
import http.server
import importlib.util
import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from skcreate.datasets import get_data_home, load_dataset, make_interactions

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def find_shared_data():
    """``SKCREATE_DATA``, else ``../shared/data`` beside the checkout, if it holds ML-100K."""
    candidates = [Path(p) for p in [os.environ.get("SKCREATE_DATA")] if p] + [SHARED_DATA]
    return next((p for p in candidates if (p / "ml-100k.csv.gz").exists()), None)
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def shared_data():
    """The benchmark data directory: ``SKCREATE_DATA`` or ``../shared/data`` when either holds
    ML-100K, else the default data home, where ML-100K is downloaded (checksum verified) the
    first time. Without data and without a network the tests that need it fail and say how to
    provide it; they never skip."""
    found = find_shared_data()
    if found is not None:
        return found
    home = get_data_home()
    try:
        load_dataset("movielens-100k", data_home=home, download=True)
    except OSError as exc:
        raise RuntimeError(
            f"benchmark data (ml-100k.csv.gz) not found in SKCREATE_DATA or {SHARED_DATA}, and "
            f"downloading it into {home} failed ({exc}): set SKCREATE_DATA to a directory "
            "holding it") from None
    return home


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


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/'served' on 127.0.0.1; yields (base_url, requested paths, root)."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_CountingHandler, directory=str(root))
    )
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.requests, root
    httpd.shutdown()
    httpd.server_close()
    thread.join()
