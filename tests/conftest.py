import functools
import http.server
import importlib.util
import os
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from skcreate.data.datasets import load_dataset, make_interactions

DATA_FILES = ("ml-100k.csv.gz", "amazon-beauty.csv.gz")
HOW_TO_RUN = (
    "run them with `python -m pytest --data DIR`: DIR holds the benchmark data "
    f"({', '.join(DATA_FILES)}), or receives them on the first run when there is a network "
    "(they are downloaded and checksum-verified, as `skcreate.data.datasets.load_dataset(name, "
    "download=True)` does); SKCREATE_DATA pointing at such a directory does the same")
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# how many data tests a run left out, for its summary
_NOT_RUN = pytest.StashKey[int]()


def pytest_addoption(parser):
    parser.addoption("--data", metavar="DIR", default=None,
                     help="directory of the benchmark data: run the tests marked 'data' "
                     "(default: SKCREATE_DATA when it holds ml-100k.csv.gz)")


def data_directory(config):
    """The benchmark data directory the run was given, or None: ``--data``, else
    ``SKCREATE_DATA`` when it already holds ML-100K."""
    option = config.getoption("--data")
    if option:
        return Path(option).expanduser()
    env = os.environ.get("SKCREATE_DATA")
    if env and (Path(env) / DATA_FILES[0]).exists():
        return Path(env)
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "data: needs the benchmark data (`pytest --data DIR`)")


def pytest_collection_modifyitems(config, items):
    """Tests that read the benchmark data are marked ``data``; without a data directory they
    are not collected (never skipped one by one), and the summary says how to run them."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker("data")
    if data_directory(config) is not None:
        return
    needing = [item for item in items if item.get_closest_marker("data")]
    if needing:
        items[:] = [item for item in items if not item.get_closest_marker("data")]
        config.hook.pytest_deselected(items=needing)
    config.stash[_NOT_RUN] = len(needing)


def pytest_terminal_summary(terminalreporter, config):
    not_run = config.stash.get(_NOT_RUN, 0)
    if not_run:
        terminalreporter.write_line(
            f"{not_run} test(s) need the benchmark data and were not collected; {HOW_TO_RUN}.",
            yellow=True)


@pytest.fixture(scope="session")
def shared_data(pytestconfig):
    """The benchmark data directory (``--data`` or ``SKCREATE_DATA``); a data set missing
    there is downloaded into it (checksum verified), and a failed download fails the test
    saying how to provide the data."""
    home = data_directory(pytestconfig)
    for name in ("movielens-100k", "amazon-beauty"):
        try:
            load_dataset(name, data_home=home, download=True)
        except OSError as exc:
            raise RuntimeError(f"benchmark data {name} not in {home}, and downloading it "
                               f"failed ({exc}); {HOW_TO_RUN}.") from None
    return home


@pytest.fixture(scope="module")
def load_benchmark():
    """``load_benchmark(name)`` imports ``benchmarks/<name>.py`` as the script would run: with
    its folder on the path, for the helpers the scripts share (``benchmarks/_common.py``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.append(str(BENCHMARKS))

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
