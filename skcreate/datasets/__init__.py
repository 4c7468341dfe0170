"""Data sets: reading interaction files, public benchmarks and synthetic data.

All loaders return the standard interactions frame with columns ``user_id``, ``item_id``,
``timestamp`` (see the data contract in the design notes).
"""

from ._home import get_data_home
from ._loaders import list_datasets, load_dataset, load_interactions
from ._synthetic import make_interactions

__all__ = [
    "get_data_home",
    "list_datasets",
    "load_dataset",
    "load_interactions",
    "make_interactions",
]
