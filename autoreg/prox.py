"""Proximal maps for penalties on torch weights, applied in place after an optimizer step.

Every function takes a weight matrix shaped inputs x outputs (a view such as ``layer.weight.T``
works: the maps write through it) and must be called under ``torch.no_grad()``.
"""

from __future__ import annotations

import numpy as np


def soft_threshold(w, t: float) -> None:
    """``w <- sign(w) * max(|w| - t, 0)``: the proximal map of ``t * |w|``; exact zeros."""
    if t > 0:
        w.copy_(w.sign() * (w.abs() - t).clamp_(min=0.0))


def group_soft_threshold_rows(w, groups, t: float) -> None:
    """Shrink each group of rows together by ``t * sqrt(number of its weights)``: the proximal
    map of the group lasso. A group whose norm is below that becomes exactly zero as a whole.

    ``groups`` holds one group id per row (numpy ints). A row of the first layer is everything a
    feature sends forward, so a zeroed group removes its features from the model.
    """
    import torch

    if t <= 0:
        return
    ids, index, sizes = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    index_t = torch.as_tensor(index, device=w.device)
    sq = torch.zeros(len(ids), dtype=w.dtype, device=w.device)
    sq.index_add_(0, index_t, (w * w).sum(dim=1))
    # The penalty weighs a group by the square root of its number of weights (rows x columns),
    # as for hidden units below, so features and units are held to the same standard.
    limit = t * torch.as_tensor(np.sqrt(sizes * w.shape[1]), dtype=w.dtype, device=w.device)
    norm = sq.sqrt()
    factor = torch.where(norm > limit, 1.0 - limit / norm.clamp(min=1e-30),
                         torch.zeros_like(norm))
    w.mul_(factor[index_t].unsqueeze(1))


def group_soft_threshold_all_rows(w, t: float) -> None:
    """Every row its own group (all of one unit's outgoing weights): unit removal."""
    import torch

    if t <= 0:
        return
    n_cols = w.shape[1]
    limit = t * float(np.sqrt(n_cols))
    norm = w.norm(dim=1)
    factor = torch.where(norm > limit, 1.0 - limit / norm.clamp(min=1e-30),
                         torch.zeros_like(norm))
    w.mul_(factor.unsqueeze(1))
