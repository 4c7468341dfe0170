"""Parameters renamed between versions, and the upgrade of an old spelling to today's.

Model files written by an older skcreate load through :func:`upgrade_params`, so do the
spellings in scripts and the recorded outputs of the golden test; ``docs/migration.md`` lists
the same table for people.
"""

__all__ = ["RENAMED", "respell", "upgrade_params"]

_GRAPH = {name: f"graph_encoder__{name}" for name in (
    "n_layers", "normalize_layers", "edge_dropout", "constraint_weight", "item_weight",
    "n_neighbours", "n_negatives", "negative_weight")}
_ALIGNMENT = {"barlow_lambda": "alignment__barlow_lambda",
              "temperature": "alignment__temperature",
              "projector_dim": "alignment__projector_dim",
              "alignment_positions": "alignment__positions",
              "alignment_graph_view": "alignment__graph_view",
              "alignment_stop_gradient": "alignment__stop_gradient"}

_SEQUENCE = {name: f"sequence_encoder__{name}" for name in (
    "n_blocks", "n_heads", "max_len", "dropout", "norm_first", "mask_prob")}
_LOSS = {"sce_buckets": "loss__n_buckets", "sce_bucket_size_x": "loss__bucket_size_x",
         "sce_bucket_size_y": "loss__bucket_size_y", "sce_candidates": "loss__n_candidates"}

_TRAINER = {name: f"trainer__{name}" for name in (
    "device", "early_stopping", "patience", "validation_quantile", "retrain_on_all",
    "checkpoint_path", "checkpoint_every", "callbacks", "on_interrupt", "distributed",
    "precision", "verbose")}

#: version -> estimator class name -> {old parameter: today's spelling}
RENAMED = {"0.2.0": {"CREATERecommender": {**_SEQUENCE, **_GRAPH, **_ALIGNMENT, **_LOSS,
                                           **_TRAINER},
                     "SASRecRecommender": {**_LOSS, **_TRAINER},
                     **{name: _TRAINER for name in ("LightGCNRecommender", "UltraGCNRecommender",
                                                    "GraphRecommender")}}}


def _renamed(cls):
    """{old name: today's spelling} of the parameters ``cls`` no longer has."""
    current = set(cls._get_param_names())
    return {old: new for table in RENAMED.values() for old, new in
            table.get(cls.__name__, {}).items() if old not in current}


def respell(cls, params):
    """``params`` with today's name for each old one (values unchanged), for comparing
    configurations written in different versions.

    Examples
    --------
    >>> from skcreate import CREATERecommender
    >>> respell(CREATERecommender, {"temperature": 0.5, "epochs": 3})
    {'alignment__temperature': 0.5, 'epochs': 3}
    """
    renamed = _renamed(cls)
    return {renamed.get(name, name): value for name, value in params.items()}


def upgrade_params(cls, params):
    """Constructor parameters of ``cls`` today for ``params`` spelt as an older version did.

    An old flat option of a part becomes the part's option (the part's name turns into its
    default instance with that option) when it differs from the part's default; an option of
    a part not in use had no effect and is dropped, as are options a user's own part does not
    take.

    Parameters
    ----------
    cls : type
        Estimator class.
    params : dict
        Constructor parameters, old spellings allowed.

    Returns
    -------
    dict
        Parameters ``cls`` takes today.

    Examples
    --------
    >>> from skcreate import CREATERecommender
    >>> upgrade_params(CREATERecommender, {"n_layers": 2, "temperature": 0.5})["graph_encoder"]
    LightGCNEncoder(n_layers=2)
    """
    renamed = _renamed(cls)
    estimator = cls(**{name: value for name, value in params.items() if name not in renamed})
    for old, new in renamed.items():
        if old not in params:
            continue
        part_name, _, option = new.partition("__")
        part = estimator.get_params(deep=False)[part_name]
        shortcuts = cls._parts[part_name]
        if shortcuts.is_name(part):
            part = shortcuts.resolve(part) if part in shortcuts.defaults else None
        if part is None or option not in part.get_params() or \
                part.get_params()[option] == params[old]:
            continue
        estimator.set_params(**{new: params[old]})
    return estimator.get_params(deep=False)
