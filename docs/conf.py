"""Sphinx configuration of the skcreate documentation."""

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

import skcreate  # noqa: E402

project = "skcreate"
author = "skcreate developers"
copyright = "skcreate developers"
version = release = skcreate.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# the notebooks are linked from notebooks.rst and copied as files, never parsed
exclude_patterns = ["_build", "notebooks", "**/.ipynb_checkpoints"]

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
autosummary_generate = False

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

myst_heading_anchors = 3

html_theme = "alabaster"
html_theme_options = {"description": "scikit-learn-style sequential recommendation"}


def _copy_notebooks(app, exception):
    """Put docs/notebooks/*.ipynb beside the HTML pages, so the links on notebooks.html work."""
    source = DOCS / "notebooks"
    if exception is None and app.builder.format == "html" and source.is_dir():
        shutil.copytree(source, Path(app.outdir) / "notebooks", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))


def _skip_sklearn_members(app, what, name, obj, skip, options):
    """Leave out methods inherited from scikit-learn (get_params, set_output, ...)."""
    if (getattr(obj, "__module__", None) or "").startswith("sklearn."):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_members)
    app.connect("build-finished", _copy_notebooks)
