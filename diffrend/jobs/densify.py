"""Adaptive density control of 3D Gaussian splatting (Kerbl et al. 2023; gsplat's default
strategy): clone small Gaussians and split large ones where the screen-space gradient of
their 2D means stays high, prune transparent and oversized ones, and reset opacities now and
then so that floaters can fade out.

The Gaussians are a dict of leaf tensors with one row per Gaussian (``means`` (N, 3),
``scales`` (N, 3) log, ``quats`` (N, 4), ``opacities`` (N,) logit, ``sh0`` (N, 1, 3),
``shN`` (N, K - 1, 3)), optimised by one Adam whose parameter groups are named after them.
Every change of rows rebuilds the tensors and carries Adam's moments along (zeros for new
rows), so the optimizer never holds a stale tensor.
"""

from __future__ import annotations

import torch

from ..splat.projection import quat_to_rotmat

PARAM_NAMES = ("means", "scales", "quats", "opacities", "sh0", "shN")


@torch.no_grad()
def update_rows(params: dict[str, torch.Tensor], opt: torch.optim.Adam, keep: torch.Tensor,
                new: dict[str, torch.Tensor] | None = None) -> None:
    """Keep the rows ``keep`` ((N,) bool mask) of every parameter and append ``new``'s rows
    (the same keys, (M, ...) each), in place in ``params`` and ``opt``: Adam's moments of
    kept rows are kept, those of new rows are zero."""
    for group in opt.param_groups:
        name = group["name"]
        old = group["params"][0]
        rows = old[keep]
        if new is not None:
            rows = torch.cat([rows, new[name].to(old.dtype)])
        param = rows.detach().clone().requires_grad_(True)
        state = opt.state.pop(old, None)
        if state:
            added = 0 if new is None else new[name].shape[0]
            for key in ("exp_avg", "exp_avg_sq"):
                moment = state[key][keep]
                state[key] = torch.cat([moment, moment.new_zeros((added, *moment.shape[1:]))])
            opt.state[param] = state
        group["params"][0] = param
        params[name] = param


@torch.no_grad()
def densify_and_prune(
    params: dict[str, torch.Tensor],
    opt: torch.optim.Adam,
    grad2d: torch.Tensor,
    count: torch.Tensor,
    scene_scale: float,
    grow_grad2d: float,
    grow_scale3d: float,
    prune_opacity: float,
    prune_scale3d: float | None,
    max_gaussians: int,
    generator: torch.Generator,
) -> dict[str, int]:
    """One refinement: clone, split, then prune, in place in ``params`` and ``opt``.

    Args:
        params, opt: the Gaussians and their optimizer (see the module docstring).
        grad2d: (N,) summed norms of the 2D means' gradients (in pixels / 2 of each view,
            as gsplat normalises them); count: (N,) how many renders saw each Gaussian.
        scene_scale: the scene's size (scales are compared with it).
        grow_grad2d: average 2D gradient above which a Gaussian is grown.
        grow_scale3d: a grown Gaussian whose largest scale is at most this (times the scene
            scale) is cloned, a larger one split in two.
        prune_opacity: Gaussians less opaque than this are removed.
        prune_scale3d: Gaussians larger than this (times the scene scale) are removed too
            (None: no size limit; used after the first opacity reset, as 3DGS does).
        max_gaussians: no growth beyond this many Gaussians (pruning still runs).
        generator: draws the split Gaussians' new centres (CPU).

    Returns:
        ``{"cloned": ..., "split": ..., "pruned": ...}`` counts.
    """
    n = params["means"].shape[0]
    avg = grad2d / count.clamp(min=1)
    high = (avg > grow_grad2d) & (count > 0)
    scale = params["scales"].exp().amax(-1)
    small = scale <= grow_scale3d * scene_scale
    room = max(0, max_gaussians - n)
    clone = high & small
    split = high & ~small
    if int(clone.sum() + split.sum()) > room:  # grow the highest gradients first
        order = torch.argsort(torch.where(high, avg, torch.zeros_like(avg)), descending=True)
        allowed = torch.zeros_like(high)
        allowed[order[:room]] = True
        clone, split = clone & allowed, split & allowed
    n_clone, n_split = int(clone.sum()), int(split.sum())
    new: dict[str, torch.Tensor] = {k: params[k][clone] for k in PARAM_NAMES}
    if n_split:
        # Two Gaussians drawn inside each split one, each 1/1.6 of its size (3DGS).
        s = params["scales"][split].exp()
        rot = quat_to_rotmat(params["quats"][split])
        noise = torch.randn((2, n_split, 3), generator=generator,
                            dtype=s.dtype).to(s.device)
        offsets = torch.einsum("nij,bnj->bni", rot, noise * s[None])
        halves = {k: params[k][split].repeat(2, *[1] * (params[k].ndim - 1))
                  for k in PARAM_NAMES}
        halves["means"] = (params["means"][split][None] + offsets).reshape(-1, 3)
        halves["scales"] = (s / 1.6).log().repeat(2, 1)
        new = {k: torch.cat([new[k], halves[k]]) for k in PARAM_NAMES}
    update_rows(params, opt, ~split, new)
    opacity = torch.sigmoid(params["opacities"])
    prune = opacity < prune_opacity
    if prune_scale3d is not None:
        prune |= params["scales"].exp().amax(-1) > prune_scale3d * scene_scale
    if int(prune.sum()) >= params["means"].shape[0]:  # never prune to nothing
        prune[torch.argmax(opacity)] = False
    n_pruned = int(prune.sum())
    if n_pruned:
        update_rows(params, opt, ~prune)
    return {"cloned": n_clone, "split": n_split, "pruned": n_pruned}


@torch.no_grad()
def reset_opacities(params: dict[str, torch.Tensor], opt: torch.optim.Adam,
                    value: float) -> None:
    """Clamp every opacity to at most ``value`` (in (0, 1)), zeroing the opacities' Adam
    moments (3DGS's periodic reset)."""
    logit = torch.logit(torch.tensor(value, dtype=params["opacities"].dtype))
    params["opacities"].clamp_(max=float(logit))
    for group in opt.param_groups:
        if group["name"] == "opacities":
            state = opt.state.get(group["params"][0])
            if state:
                state["exp_avg"].zero_()
                state["exp_avg_sq"].zero_()
