"""The documentation builds with Sphinx without a single warning, and its pages show things:
notebooks with their plots, benchmark figures, formulas rendered offline, no e-mail links."""

import html as html_text
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "html"
    # sphinx, numpydoc, myst-nb and sphinx-mathjax-offline come with the dev extra
    # -W turns every warning into an error; --keep-going reports all of them before failing
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(DOCS), str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def _images(page):
    return re.findall(r'<img[^>]*src="([^"]+)"', page.read_text(encoding="utf-8"))


def test_docs_build_without_warnings(html):
    assert (html / "api" / "skcreate.estimators.create.html").exists()


@pytest.mark.parametrize("name", ["quickstart", "implicit_comparison"])
def test_notebooks_are_pages_with_their_plots(html, name):
    page = html / "notebooks" / f"{name}.html"
    pngs = [src for src in _images(page) if src.endswith(".png")]
    assert pngs, f"{name}: no plot"
    assert all((page.parent / src).resolve().is_file() for src in pngs)
    assert "cell_output" in page.read_text(encoding="utf-8")  # outputs, not raw JSON


def test_benchmark_figures_are_embedded(html):
    page = html / "benchmarks.html"
    shown = {Path(src).name for src in _images(page)}
    assert {"table2-beauty-create-curves.png", "ablation-beauty.png",
            "size-sweep.png"} <= shown
    assert all((page.parent / src).resolve().is_file() for src in _images(page))


def test_math_renders_offline(html):
    for name in ["user_guide.html", "protocol.html"]:
        text = (html / name).read_text(encoding="utf-8")
        scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', text, flags=re.I)
        assert scripts and not any(s.startswith(("http:", "https:", "//")) for s in scripts)
        assert all((html / s).is_file() for s in scripts), scripts
        assert 'class="math' in text  # formulas marked up for MathJax
    assert "\\mathcal{L}_\\text{BT}" in (html / "user_guide.html").read_text(encoding="utf-8")


def test_no_mailto_links(html):
    pages = [p for p in html.rglob("*.html")]
    offenders = [str(p.relative_to(html)) for p in pages if "mailto:" in p.read_text("utf-8")]
    assert offenders == []
    # the metric names that docutils used to link stay readable text
    page = (html / "api" / "skcreate.estimators.sequential.html").read_text(encoding="utf-8")
    assert "Validation NDCG@10 per epoch" in html_text.unescape(re.sub(r"<[^>]+>", "", page))


def test_protocol_page(html):
    text = (html / "protocol.html").read_text(encoding="utf-8")
    for heading in ["Evaluation protocol", "Global temporal split", "Metrics",
                    "Benchmark protocol"]:
        assert heading in text
    assert "protocol.html" in (html / "index.html").read_text(encoding="utf-8")
