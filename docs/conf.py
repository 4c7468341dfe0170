"""Sphinx configuration of the skcreate documentation."""

import sys
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform

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
    # MathJax 3 bundled in a wheel, copied into _static: formulas render offline
    "sphinx-mathjax-offline",
    "numpydoc",
    # MyST markdown and notebooks (myst-nb includes myst-parser)
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# the notebooks are rendered with the outputs committed in them; the build never runs them
# (tests/test_notebooks.py executes them)
nb_execution_mode = "off"

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
autosummary_generate = False

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

myst_heading_anchors = 3

html_theme = "alabaster"
html_theme_options = {"description": "scikit-learn-style sequential recommendation",
                      "page_width": "min(1400px, 100%)"}
html_static_path = ["_static"]
html_css_files = ["custom.css"]


class _NoEmailLinks(SphinxTransform):
    """Undo docutils' e-mail autolinks: "NDCG@10" in a docstring is a metric, not an address."""

    default_priority = 800

    def apply(self):
        for ref in list(self.document.findall(nodes.reference)):
            if ref.get("refuri", "").startswith("mailto:"):
                ref.replace_self(nodes.Text(ref.astext()))


def _skip_sklearn_members(app, what, name, obj, skip, options):
    """Leave out methods inherited from scikit-learn (get_params, set_output, ...)."""
    if (getattr(obj, "__module__", None) or "").startswith("sklearn."):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_members)
    app.add_transform(_NoEmailLinks)
