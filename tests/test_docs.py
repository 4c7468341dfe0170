"""The documentation builds with Sphinx without a single warning."""

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_build_without_warnings(tmp_path):
    # sphinx, numpydoc and myst-parser come with the dev extra: missing, the build fails
    # -W turns every warning into an error; --keep-going reports all of them before failing
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "html" / "api" / "skcreate.create.html").exists()
