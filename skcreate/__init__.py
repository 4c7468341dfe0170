"""skcreate: scikit-learn-style sequential recommendation, centred on CREATE."""

# before the imports: submodules read it while the package initialises
__version__ = "0.1.0"

from .baselines import (PopRandomRecommender, PopularRecommender, PureSVDRecommender,
                        RandomRecommender)
from .create import CREATERecommender
from .graph import LightGCNRecommender, UltraGCNRecommender
from .matrix_factorization import ALSRecommender, BPRRecommender
from .model_selection import GlobalTemporalSplit, LeaveLastOutSplit, global_temporal_split
from .persistence import load
from .pipeline import RecommenderPipeline
from .sequential import SASRecRecommender

__all__ = [
    "ALSRecommender", "BPRRecommender", "CREATERecommender", "GlobalTemporalSplit",
    "LeaveLastOutSplit", "LightGCNRecommender", "PopRandomRecommender", "PopularRecommender",
    "PureSVDRecommender", "RandomRecommender", "RecommenderPipeline", "SASRecRecommender",
    "UltraGCNRecommender", "global_temporal_split", "load",
]
