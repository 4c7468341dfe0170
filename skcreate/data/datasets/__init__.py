"""Data sets: reading interaction files, public benchmarks and synthetic data.

All loaders return the standard interactions frame with columns ``user_id``, ``item_id``,
``timestamp`` (see the data contract in ``docs/protocol.md``).
"""

from ._home import get_data_home
from ._loaders import list_datasets, load_dataset, load_interactions, load_item_metadata
from ._synthetic import make_interactions

__all__ = [
    "get_data_home",
    "list_datasets",
    "load_dataset",
    "load_interactions",
    "load_item_metadata",
    "make_interactions",
]
