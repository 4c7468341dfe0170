"""Carrying a fitted network's weights and optimiser state into the network of grown data.

When new users and items arrive (``partial_fit``), the estimator builds its network for the
grown data; the fitted values are then copied row by row: an item keeps its code, so its item
table row moves only past the padding row (BERT4Rec's [MASK] moving after the new items), and a
user keeps its graph row wherever the fitted network had one. New rows keep their fresh
initialisation (zeros in the optimiser's moments); buffers, the graph's adjacency among them,
are those of the grown data.
"""

import numpy as np
import torch

from ..nn.graph_encoder import GraphEncoder
from ..nn.item_table import ItemTable

__all__ = ["row_maps", "grow_into", "grow_optimizer_state"]


def row_maps(new, old, user_rows):
    """For each parameter of ``new`` whose rows ``old`` holds differently: the old row of
    each new row, -1 for a new one.

    Parameters
    ----------
    new, old : torch.nn.Module
        The same architecture, built for grown and fitted data.
    user_rows : numpy.ndarray of int
        For each user of the grown data, its row in ``old``'s graph tables (-1: new).

    Returns
    -------
    dict of str to numpy.ndarray
    """
    maps = {}
    old_modules = dict(old.named_modules())
    for path, module in new.named_modules():
        prefix = f"{path}." if path else ""
        before = old_modules.get(path)
        if isinstance(module, ItemTable):
            rows = np.full(module.weight.shape[0], -1)
            kept = before.n_items + 1  # padding and the fitted catalogue
            rows[:kept] = np.arange(kept)
            extra = module.extra_tokens
            rows[module.n_items + 1:] = np.arange(kept, kept + extra)
            maps[f"{prefix}embedding.weight"] = rows
        elif isinstance(module, GraphEncoder):
            maps[f"{prefix}user_embedding.weight"] = np.asarray(user_rows)
    return maps


def grow_into(new, old, user_rows):
    """Copy ``old``'s parameters into ``new`` by :func:`row_maps`; returns the maps.

    Raises
    ------
    ValueError
        If a parameter that is no row table differs in shape (a part that grows otherwise).
    """
    maps = row_maps(new, old, user_rows)
    old_params = dict(old.named_parameters())
    with torch.no_grad():
        for name, param in new.named_parameters():
            before = old_params[name].detach().to(param.device)
            rows = maps.get(name)
            if rows is None:
                if before.shape != param.shape:
                    raise ValueError(f"partial_fit cannot grow parameter {name}: "
                                     f"{tuple(before.shape)} fitted, {tuple(param.shape)} "
                                     "for the grown data, and it is no item or user table.")
                param.copy_(before)
            else:
                _move_rows(before, rows, param)
    return maps


def _move_rows(value, rows, out):
    """``out`` with row ``i`` set to ``value[rows[i]]`` wherever ``rows[i] >= 0``."""
    keep = rows >= 0
    out[torch.as_tensor(keep, device=out.device)] = \
        value[torch.as_tensor(rows[keep], device=value.device)].to(out.device, out.dtype)
    return out


def grow_optimizer_state(state, new, maps):
    """An optimiser ``state_dict`` of the fitted network for ``new``: the moments of each row
    moved as :func:`grow_into` moved the weights, zeros for new rows."""
    params = list(new.named_parameters())
    grown = {}
    for index, entry in state["state"].items():
        name, param = params[index]
        rows = maps.get(name)
        grown[index] = {}
        for key, value in entry.items():
            if rows is not None and isinstance(value, torch.Tensor) and value.dim() > 0 \
                    and value.shape[1:] == param.shape[1:]:
                value = _move_rows(value, rows, torch.zeros(param.shape, dtype=value.dtype))
            grown[index][key] = value
    return {"state": grown, "param_groups": state["param_groups"]}
