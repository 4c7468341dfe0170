"""Plain torch networks, losses and the parts CREATE is composed of; no estimator logic here.

Each box of the CREATE paper's Figure 1 is one module: the shared item table
(:mod:`~skcreate.nn.item_table`), the sequence encoder (:mod:`~skcreate.nn.sasrec`), its local
loss (:mod:`~skcreate.nn.local_loss`) and its step (:mod:`~skcreate.nn.sequence_model`), the
graph encoders (:mod:`~skcreate.nn.lightgcn`, :mod:`~skcreate.nn.ultragcn`, interface in
:mod:`~skcreate.nn.graph_encoder`) and their step (:mod:`~skcreate.nn.graph_model`), the
alignment (:mod:`~skcreate.nn.alignment`, :mod:`~skcreate.nn.projected_barlow`) and the joint
network (:mod:`~skcreate.nn.create_model`).
"""

from .alignment import Alignment, BarlowTwins, InfoNCE
from .component import Component
from .create_model import CREATEModel
from .graph_encoder import GraphEncoder, PartialTable
from .graph_model import GraphModel
from .item_table import ItemTable
from .lightgcn import LightGCNEncoder
from .projected_barlow import ProjectedBarlowTwins
from .local_loss import FullCrossEntropy, LocalLoss, ScalableCrossEntropy
from .losses import (barlow_twins_loss, bpr_loss, full_cross_entropy, info_nce_loss,
                     scalable_cross_entropy)
from .registry import BUILT_IN_PARTS, Shortcuts
from .sasrec import BERT4RecEncoder, SASRecEncoder, attention_mask
from .sequence_model import SequenceModel
from .sparse import normalized_adjacency, sparse_tensor, symmetric_spmm
from .ultragcn import UltraGCNEncoder, item_neighbours

__all__ = ["Alignment", "BarlowTwins", "InfoNCE", "ProjectedBarlowTwins", "Component",
           "CREATEModel", "GraphEncoder", "GraphModel", "PartialTable", "ItemTable",
           "LightGCNEncoder", "UltraGCNEncoder", "SASRecEncoder", "BERT4RecEncoder",
           "SequenceModel", "Shortcuts",
           "BUILT_IN_PARTS", "attention_mask", "normalized_adjacency",
           "sparse_tensor", "symmetric_spmm", "item_neighbours", "full_cross_entropy",
           "scalable_cross_entropy", "LocalLoss", "FullCrossEntropy",
           "ScalableCrossEntropy", "bpr_loss", "barlow_twins_loss", "info_nce_loss"]
