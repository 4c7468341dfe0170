"""Plain torch networks and losses; no estimator logic lives here."""

from .graph import LightGCNEncoder, UltraGCNEncoder, item_neighbours, normalized_adjacency
from .losses import (barlow_twins_loss, bpr_loss, full_cross_entropy, info_nce_loss,
                     scalable_cross_entropy)
from .sasrec import SASRecEncoder, attention_mask

__all__ = ["SASRecEncoder", "attention_mask", "LightGCNEncoder", "UltraGCNEncoder",
           "normalized_adjacency", "item_neighbours", "full_cross_entropy",
           "scalable_cross_entropy", "bpr_loss", "barlow_twins_loss", "info_nce_loss"]
