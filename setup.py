import re
from pathlib import Path

from setuptools import find_packages, setup

# one place for the version: the package's own module, read as text (no import before install)
VERSION = re.search(r'__version__ = "([^"]+)"',
                    Path(__file__).with_name("skcreate").joinpath("_version.py").read_text())[1]

# export (torch's ONNX exporter needs onnxscript) and torch-free serving
SERVING = ["onnx>=1.16", "onnxscript>=0.3", "onnxruntime>=1.18"]

setup(
    name="skcreate",
    version=VERSION,
    description="scikit-learn-style sequential recommendation: SASRec, LightGCN and CREATE",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["skcreate", "skcreate.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "scikit-learn>=1.6",
        "scipy>=1.10",
        "numpy>=1.24",
        "pandas>=2.0",
        "implicit>=0.7",
        "threadpoolctl>=3.1",
        "tqdm>=4.60",
        "numba>=0.60",
    ],
    extras_require={
        "dev": ["pytest>=7", "hypothesis>=6.80", "pyarrow>=12", "polars>=1.0", "matplotlib>=3.7",
                "nbformat>=5.9", "nbclient>=0.8", "ipykernel>=6", "optuna>=3.0",
                "sphinx>=7", "numpydoc>=1.6", "myst-nb>=1.1", "sphinx-mathjax-offline>=0.0.2",
                *SERVING],
        "serving": SERVING,
        "plot": ["matplotlib>=3.7"],
        "benchmarks": ["matplotlib>=3.7", "optuna>=3.0"],
        # parquet paths, pyarrow tables and polars frames as fit/recommend input
        "io": ["pyarrow>=12", "polars>=1.0"],
        "docs": ["sphinx>=7", "numpydoc>=1.6", "myst-nb>=1.1", "sphinx-mathjax-offline>=0.0.2"],
    },
    entry_points={"console_scripts": ["skcreate=skcreate.apps.cli:main"]},
)
