"""Adam with row-wise (lazy) updates of row-sparse gradients, and clipping that counts them."""

import math

import torch

__all__ = ["LazyAdam", "clip_grad_norm", "has_row_sparse_gradients"]


def _reads_are_free(tensor):
    """Whether reading a value of ``tensor`` on the host costs nothing (a CPU tensor); on a
    GPU it waits for the device, which the optimiser's steps never do."""
    return tensor.device.type == "cpu"


def _coalesced(grad):
    """``grad.coalesce()``, without the sort where its rows are already sorted and distinct
    (the gradient of :func:`~skcreate.nn.sparse.distinct_rows`; autograd drops the flag)."""
    if grad.is_coalesced():
        return grad
    indices = grad._indices()
    rows = indices[0]
    if _reads_are_free(grad) and len(indices) == 1 and bool((rows[1:] > rows[:-1]).all()):
        return torch.sparse_coo_tensor(indices, grad._values(), grad.shape, is_coalesced=True,
                                       check_invariants=False)
    return grad.coalesce()


def has_row_sparse_gradients(module):
    """Whether some table of ``module`` gives row-sparse gradients (an embedding with
    ``sparse=True``): such a network needs :class:`LazyAdam`."""
    return any(isinstance(part, torch.nn.Embedding) and part.sparse
               for part in module.modules())


class LazyAdam(torch.optim.Optimizer):
    """Adam that updates only the rows a sparse gradient holds.

    A dense gradient gets the plain Adam update (L2 ``weight_decay`` as in
    :class:`torch.optim.Adam`). A sparse COO gradient (an embedding with ``sparse=True``)
    updates the moments and weights of its rows only, with the bias correction of the
    parameter's step count (TensorFlow's LazyAdam): a step that reads a few thousand rows of a
    million-row table costs those rows, not the table. Rows without gradient keep their
    moments, so they do not drift on stale momentum as under dense Adam. On a CPU the rows
    of a float32 or float64 table are updated by a compiled kernel (numba) that reads and
    writes each row once, split over ``torch.get_num_threads()`` threads; elsewhere by torch's
    kernels, with the same formulas (results equal to float rounding).

    Parameters
    ----------
    params : iterable of torch.Tensor or dict
    lr : float, default=1e-3
    betas : tuple of float, default=(0.9, 0.999)
    eps : float, default=1e-8
    weight_decay : float, default=0.0
        L2 penalty added to the gradient (of the touched rows, for sparse gradients).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                elif isinstance(state["step"], torch.Tensor):
                    # the state of torch's Adam (a model updated after its graph grew past
                    # "auto"'s threshold): read once
                    state["step"] = int(state["step"])
                state["step"] += 1
                # host-side step count: the update never waits for the device
                step = state["step"]
                size = group["lr"] / (1 - beta1 ** step)
                root_correction = math.sqrt(1 - beta2 ** step)
                if param.grad.is_sparse:
                    self._sparse_update(param, state, group, size, root_correction)
                    continue
                grad = param.grad
                if group["weight_decay"]:
                    grad = grad.add(param, alpha=group["weight_decay"])
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = exp_avg_sq.sqrt().div_(root_correction).add_(group["eps"])
                param.addcdiv_(exp_avg, denom, value=-size)
        return loss

    @staticmethod
    def _sparse_update(param, state, group, size, root_correction):
        grad = _coalesced(param.grad)
        rows, values = grad.indices()[0], grad.values()
        # imported here: numba compiles the kernel (or loads it from its cache) at the first
        # row-sparse step, not at import
        from . import _adam_rows
        if _adam_rows.supported(param, values, state["exp_avg"], state["exp_avg_sq"]):
            _adam_rows.adam_rows(param, state["exp_avg"], state["exp_avg_sq"], rows, values,
                                 group["betas"], group["weight_decay"], size, root_correction,
                                 group["eps"])
            return
        beta1, beta2 = group["betas"]
        # index_select/index_copy_: several times faster than indexing on CPU
        if group["weight_decay"]:
            values = values.add(param.index_select(0, rows), alpha=group["weight_decay"])
        exp_avg = state["exp_avg"].index_select(0, rows).lerp_(values, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(
            values, values, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        denom = exp_avg_sq.sqrt_().div_(root_correction).add_(group["eps"])
        # scaled here: index_add_ with an alpha takes a CPU path about 2x slower
        param.index_add_(0, rows, exp_avg.div_(denom).mul_(-size))


def clip_grad_norm(parameters, max_norm):
    """:func:`torch.nn.utils.clip_grad_norm_` that also counts row-sparse gradients.

    Without sparse gradients it is torch's function. Sparse ones (an
    :class:`~skcreate.nn.ItemTable` with ``sparse=True``) are coalesced in place first, so
    repeated rows count once, and scaled with the rest. No value is read on the host.
    """
    parameters = [p for p in parameters if p.grad is not None]
    if not any(p.grad.is_sparse for p in parameters):
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    grads = []
    for param in parameters:
        if param.grad.is_sparse:
            param.grad = _coalesced(param.grad)
            grads.append(param.grad.values())
        else:
            grads.append(param.grad)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for grad in grads:
        grad.mul_(scale)
    return total
