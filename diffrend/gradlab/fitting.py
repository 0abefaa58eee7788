"""Silhouette-only mesh fitting with each method: an ico-sphere deformed into the cow.

Every method starts from the same sphere and the same views, with the same optimiser: the
smooth ("large steps") vertex parameterisation of :mod:`diffrend.jobs.smooth_param` and
Adam, the loss being the mean squared silhouette error over a random subset of training
views per step. Results: IoU on held-out views (hard renders) and the chamfer distance to
the cow, both at the end, and the time taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..jobs.metrics import heldout_iou, normalized_chamfer, silhouettes
from ..jobs.smooth_param import SmoothVertexParam
from ..jobs.views import sphere_cameras
from ..structures import Meshes, ico_sphere
from .methods import MethodSpec


@dataclass(frozen=True)
class FitRow:
    """One method's silhouette fit."""

    method: str
    image_size: int
    steps: int
    heldout_iou_mean: float
    heldout_iou_min: float
    chamfer: float
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FitSetup:
    """Training and held-out views of the reference mesh, shared by every method."""

    train_cameras: object
    train_masks: torch.Tensor
    heldout_cameras: object
    heldout_masks: torch.Tensor


def make_setup(reference: Meshes, image_size: int, views: int = 16, heldout: int = 8,
               dist: float = 3.0) -> FitSetup:
    """Hard silhouettes of ``reference`` from ``views`` training cameras (at
    ``image_size``) and ``heldout`` other cameras (at 2 x ``image_size``)."""
    train = sphere_cameras(views, dist=dist, offset=0.5, device=reference.device)
    held = sphere_cameras(heldout, dist=dist, offset=0.25, device=reference.device)
    return FitSetup(train, silhouettes(reference, train, image_size), held,
                    silhouettes(reference, held, 2 * image_size))


def fit_silhouettes(
    spec: MethodSpec,
    reference: Meshes,
    setup: FitSetup,
    steps: int = 300,
    lr: float = 0.02,
    views_per_step: int = 4,
    level: int = 3,
    lam: float = 20.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[FitRow, Meshes]:
    """Fit an ico-sphere of radius 0.6 to ``setup``'s masks with ``spec``'s gradients.

    ``progress`` is called with 1 after every step.

    Returns:
        The row of results and the fitted mesh.
    """
    gen = torch.Generator().manual_seed(seed)
    sphere = ico_sphere(level)
    dev = reference.device
    sphere = Meshes([sphere.verts_packed().to(dev) * 0.6], [sphere.faces_packed().to(dev)])
    param = SmoothVertexParam(sphere, lam)
    u = param.to_params(sphere.verts_packed()).requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr)
    faces = sphere.faces_packed()
    size = setup.train_masks.shape[-1]
    n_train = setup.train_masks.shape[0]
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randperm(n_train, generator=gen)[:views_per_step].tolist()
        mesh = Meshes([param.to_verts(u)], [faces])
        sil = spec.render(mesh, setup.train_cameras[idx], size)
        loss = ((sil - setup.train_masks[idx]) ** 2).mean()
        opt.zero_grad()
        if loss.requires_grad:
            loss.backward()
            opt.step()
        if progress is not None:
            progress(1)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        mesh = Meshes([param.to_verts(u)], [faces])
        iou = heldout_iou(mesh, setup.heldout_cameras, setup.heldout_masks)
    row = FitRow(spec.label, size, steps, float(iou.mean()), float(iou.min()),
                 normalized_chamfer(mesh, reference), seconds)
    return row, mesh


def fit_figure(meshes: dict[str, Meshes], setup: FitSetup, views: int = 3) -> np.ndarray:
    """Held-out silhouettes: the target row, then one row per method; uint8 (H, W, 3).

    Pixels are black where both agree on the object, red where the fit misses it and blue
    where it adds to it.
    """
    from ..jobs.pictures import labelled_row

    target = setup.heldout_masks[:views]
    cams = setup.heldout_cameras[list(range(views))]
    size = target.shape[-1]
    rows = [labelled_row(_mask_rgb(target, target), "target (held-out views)")]
    for label, mesh in meshes.items():
        pred = silhouettes(mesh, cams, size)
        rows.append(labelled_row(_mask_rgb(pred, target), label))
    return np.concatenate(rows, axis=0)


def _mask_rgb(pred: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    p, t = pred.bool(), target.bool()
    p, t = p.cpu(), t.cpu()
    rgb = torch.ones(*p.shape, 3)
    rgb[p & t] = 0.15
    rgb[~p & t] = torch.tensor([0.85, 0.2, 0.2])
    rgb[p & ~t] = torch.tensor([0.2, 0.35, 0.85])
    return (rgb.numpy() * 255 + 0.5).astype(np.uint8)
