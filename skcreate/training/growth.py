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

__all__ = ["row_maps", "grow_into", "grow_optimizer_state", "fold_in_items",
           "youngest_items", "stretch_new_item_steps"]


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
    moved as :func:`grow_into` moved the weights, zeros for new rows; step counts as torch's
    Adam keeps them (which :class:`~skcreate.nn.LazyAdam` reads too)."""
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
            elif key == "step" and not isinstance(value, torch.Tensor):
                # torch's Adam counts in a tensor, LazyAdam in an int: the update's optimiser
                # may be the other one (an "auto" option resolved anew for the grown graph)
                value = torch.tensor(float(value))
            grown[index][key] = value
    return {"state": grown, "param_groups": state["param_groups"]}


def fold_in_items(encoder, data, rows, first_new, batch_size=1024):
    """Start the rows of the items with codes ``first_new`` and above from ``encoder``'s states.

    A causal encoder scores an item by the dot product of its state with the item's row, so a
    new item's row is set to the mean of the states just before its events in the histories
    of users ``rows`` of ``data`` (the states that should score it), scaled to the median norm
    of the youngest fitted rows (of the items first seen last, as many as there are new
    ones): the item is recommended where histories lead to it before any update step,
    instead of starting from a random draw. The youngest, not all rows: a fit gives the items
    first seen last the longest rows (on Amazon Beauty a median norm of 2.3 against 1.8 over
    all items, and the same for the items new in the last 10 % of a refit), and a new item is
    younger still. An item whose events all start a history (no state before them) keeps its
    row.

    Returns
    -------
    int
        The number of items folded in.
    """
    weight = encoder.item_table.weight
    n_new = data.n_items - first_new
    if n_new <= 0 or first_new == 0:
        return 0
    sums = torch.zeros(n_new, weight.shape[1], device=weight.device)
    counts = torch.zeros(n_new, device=weight.device)
    training = encoder.training
    encoder.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            sequences = torch.as_tensor(
                data.last_items(encoder.max_len + 1, rows[start:start + batch_size]),
                device=weight.device)
            if sequences.shape[1] < 2:  # histories of one event: nothing precedes one
                continue
            inputs, targets = sequences[:, :-1], sequences[:, 1:]
            new = ItemTable.codes(targets) - first_new
            # a state over padding alone holds no history
            hit = (new >= 0) & (inputs != ItemTable.padding)
            if not hit.any():
                continue
            states = encoder(inputs)[hit]
            sums.index_add_(0, new[hit], states.to(sums.dtype))
            counts.index_add_(0, new[hit], torch.ones_like(new[hit], dtype=counts.dtype))
        found = counts > 0
        means = sums[found] / counts[found].unsqueeze(1)
        youngest = torch.as_tensor(youngest_items(data, first_new, n_new), device=weight.device)
        norm = weight[ItemTable.rows(youngest)].norm(dim=1).median()
        rows_new = ItemTable.rows(first_new + found.nonzero().squeeze(1))
        weight[rows_new] = (means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)
                            * norm).to(weight.dtype)
    encoder.train(training)
    return int(found.sum())


def youngest_items(data, first_new, count):
    """Codes of the ``count`` items below ``first_new`` whose first event in ``data`` is the
    latest (all of them when fewer), youngest first; ties in time keep ``data``'s order."""
    order = np.argsort(data.times, kind="stable")
    items = data.items[order]
    items = items[items < first_new]
    codes, first = np.unique(items, return_index=True)
    return codes[np.argsort(-first, kind="stable")[:count]]


def stretch_new_item_steps(make_optimizer, module, first_new, factor):
    """An optimiser factory like ``make_optimizer`` whose steps move the catalogue rows of
    item codes ``first_new`` and above ``factor`` times as far as the optimiser does.

    An update trains new items' rows for its few epochs, where a fit trains every row for
    all of its own; a larger step on these rows alone lets them catch up without moving the
    fitted rows faster (a larger learning rate for everything does both). Each step saves the
    rows before it and scales their change after it (optimiser step hooks), on every
    :class:`~skcreate.nn.ItemTable` of ``module``.
    """
    tables = [part for part in module.modules()
              if isinstance(part, ItemTable) and part.n_items > first_new]
    if factor == 1 or not tables:
        return make_optimizer

    def make(params):
        optimizer = make_optimizer(params)
        rows = [torch.arange(ItemTable.rows(first_new), ItemTable.rows(table.n_items),
                             device=table.weight.device) for table in tables]
        before = []

        def save(optimizer, args, kwargs):
            before[:] = [table.weight.detach().index_select(0, index)
                         for table, index in zip(tables, rows)]

        def stretch(optimizer, args, kwargs):
            with torch.no_grad():
                for table, index, old in zip(tables, rows, before):
                    moved = table.weight.index_select(0, index) - old
                    table.weight.index_copy_(0, index, old + factor * moved)
            before.clear()

        optimizer.register_step_pre_hook(save)
        optimizer.register_step_post_hook(stretch)
        return optimizer
    return make
