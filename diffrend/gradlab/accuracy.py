"""How close each method's gradient is to the truth, over random perturbations.

The loss is the L1 distance to a target silhouette ``T`` (rendered from a perturbed
scene): for ``S`` in [0, 1] and binary ``T``, ``|S - T| = <1 - 2T, S>`` summed over pixels.
For each of P random unit directions ``u`` (smooth vertex fields, or camera rotations and
translations), the method's directional derivative ``<grad L, u>`` (one backward pass) is
compared with the truth: central finite differences of the loss of a supersampled render
(``factor x factor`` samples per pixel). Over the P directions:

- cosine: ``<m, t> / (|m| |t|)`` (1: the gradient points the right way; random projections
  estimate the cosine between the full gradients);
- gain: ``<m, t> / <t, t>`` (1: the right size);
- rel. error: ``|m - t| / |t|``.

The truth's own noise is shown by the same cosine between the finite differences at ``eps``
and at ``eps / 2`` (row "truth (eps/2)").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from ..cameras import FoVPerspectiveCameras
from ..gradients import supersampled_silhouette
from ..structures import Meshes
from .methods import MethodSpec
from .perturb import State, apply, random_direction


@dataclass(frozen=True)
class AccuracyRow:
    """One method's agreement with the truth on one scene and parameter kind."""

    scene: str
    kind: str
    method: str
    cosine: float
    gain: float
    rel_error: float
    directions: int

    def as_dict(self) -> dict:
        return asdict(self)


def _target_weights(mesh: Meshes, cameras: FoVPerspectiveCameras, size: int,
                    generator: torch.Generator) -> torch.Tensor:
    """(N, S, S) weights ``1 - 2T`` of the L1 loss to a target from a perturbed scene."""
    target_state = State.zeros(mesh.verts_packed().shape[0], device=mesh.device)
    target_state.dv = 0.04 * random_direction(mesh, "vertices", generator).dv
    turn = random_direction(mesh, "camera", generator)
    target_state.omega, target_state.tau = 0.05 * turn.omega, 0.05 * turn.tau
    m, c = apply(mesh, cameras, target_state)
    target = (supersampled_silhouette(m, c, size, factor=1) > 0.5).double()
    return 1.0 - 2.0 * target


def gradient_accuracy(
    scene: str,
    mesh: Meshes,
    cameras: FoVPerspectiveCameras,
    methods: list[MethodSpec],
    image_size: int = 64,
    directions: int = 24,
    factor: int = 16,
    eps: float = 5e-3,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[AccuracyRow]:
    """Rows for each method and each kind ("vertices", "camera") on one scene.

    Args:
        scene: the scene's name (for the rows).
        mesh, cameras: one mesh (float64 is best) and N views of it.
        methods: the methods compared (their image_size is overridden by ``image_size``).
        image_size: side of the images.
        directions: random directions per kind.
        factor: supersampling of the truth.
        eps: finite-difference step along each unit direction.
        seed: seeds the target and the directions.
        progress: called with units of work done: one per finite difference (two
            supersampled renders) and one per method's backward pass;
            :func:`accuracy_units` of them in all.
    """
    tick = progress or (lambda n: None)
    gen = torch.Generator().manual_seed(seed)
    weights = _target_weights(mesh, cameras, image_size, gen)
    rows = []
    base = State.zeros(mesh.verts_packed().shape[0], device=mesh.device)

    def loss_true(state: State) -> float:
        m, c = apply(mesh, cameras, state)
        cover = supersampled_silhouette(m, c, image_size, factor=factor).double()
        return float((weights * cover).sum())

    def fd(dirs: list[State], h: float) -> torch.Tensor:
        values = []
        for d in dirs:
            values.append((loss_true(base.step(d, h)) - loss_true(base.step(d, -h))) / (2 * h))
            tick(1)
        return torch.tensor(values, dtype=torch.float64)

    for kind in ("vertices", "camera"):
        dirs = [random_direction(mesh, kind, gen) for _ in range(directions)]
        truth = fd(dirs, eps)
        rows.append(_row(scene, kind, "truth (eps/2)", fd(dirs, eps / 2), truth))
        for spec in methods:
            state = State.zeros(mesh.verts_packed().shape[0], requires_grad=True,
                                device=mesh.device)
            m, c = apply(mesh, cameras, state)
            sil = spec.render(m, c, image_size).double()
            loss = (weights * sil).sum()
            if loss.requires_grad:
                g = torch.autograd.grad(loss, [state.dv, state.omega, state.tau],
                                        allow_unused=True)
                g = State(*[torch.zeros_like(x) if gi is None else gi
                            for gi, x in zip(g, (state.dv, state.omega, state.tau),
                                             strict=True)])
                pred = torch.stack([g.dot(d) for d in dirs]).detach().double().cpu()
            else:
                pred = torch.zeros(directions, dtype=torch.float64)
            rows.append(_row(scene, kind, spec.label, pred, truth))
            tick(1)
    return rows


def accuracy_units(directions: int, methods: int) -> int:
    """The units of work :func:`gradient_accuracy` reports for one scene."""
    return 2 * (2 * directions + methods)


def _row(scene: str, kind: str, label: str, pred: torch.Tensor, truth: torch.Tensor
         ) -> AccuracyRow:
    tn = truth.norm().clamp(min=1e-12)
    pn = pred.norm()
    cos = float(pred @ truth / (pn * tn)) if pn > 0 else 0.0
    return AccuracyRow(scene, kind, label, cos, float(pred @ truth / tn**2),
                       float((pred - truth).norm() / tn), int(truth.numel()))
