"""Scene parameters the lab differentiates: vertex offsets and a camera pose change.

A scene state is the base mesh and cameras plus ``dv`` (V, 3) added to the vertices and
``(omega, tau)``: the object turned by ``exp(omega)`` about the origin (``R <- exp(omega)
R``) and the camera moved by ``tau`` (``T <- T + tau``), the same for every view.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..cameras import CamerasBase, FoVPerspectiveCameras
from ..structures import Meshes
from ..transforms import so3_exp_map


@dataclass
class State:
    """Perturbations of a scene: dv (V, 3), omega (3,), tau (3,)."""

    dv: torch.Tensor
    omega: torch.Tensor
    tau: torch.Tensor

    @staticmethod
    def zeros(n_verts: int, requires_grad: bool = False,
              device: torch.device | str = "cpu") -> State:
        z = [torch.zeros(s, dtype=torch.float64, device=device, requires_grad=requires_grad)
             for s in ((n_verts, 3), (3,), (3,))]
        return State(*z)

    def to(self, device: torch.device | str) -> State:
        return State(self.dv.to(device), self.omega.to(device), self.tau.to(device))

    def step(self, direction: State, eps: float) -> State:
        return State(self.dv + eps * direction.dv, self.omega + eps * direction.omega,
                     self.tau + eps * direction.tau)

    def dot(self, other: State) -> torch.Tensor:
        return ((self.dv * other.dv).sum() + (self.omega * other.omega).sum()
                + (self.tau * other.tau).sum())


def apply(mesh: Meshes, cameras: FoVPerspectiveCameras, state: State
          ) -> tuple[Meshes, CamerasBase]:
    """The mesh and cameras moved by ``state`` (differentiable w.r.t. its tensors)."""
    dtype = mesh.verts_packed().dtype
    verts = mesh.verts_packed() + state.dv.to(dtype)
    Q = so3_exp_map(state.omega[None]).to(dtype)
    R = Q @ cameras.R
    T = cameras.T + state.tau.to(dtype)
    moved = Meshes([verts], [mesh.faces_packed()])
    return moved, FoVPerspectiveCameras(R=R, T=T, fov=cameras.fov, device=R.device)


def smooth_field(mesh: Meshes, generator: torch.Generator, smoothing: int = 8
                 ) -> torch.Tensor:
    """A random smooth displacement field (V, 3), root-mean-square length 1: Gaussian
    noise averaged over vertex neighbourhoods ``smoothing`` times (a surface deforming as a
    whole, not jittering)."""
    v = mesh.verts_packed()
    edges = mesh.edges_packed().cpu()
    field = torch.randn(v.shape, generator=generator, dtype=torch.float64)
    deg = torch.zeros(v.shape[0], dtype=torch.float64).index_add_(
        0, edges.reshape(-1), torch.ones(edges.numel(), dtype=torch.float64))
    for _ in range(smoothing):
        acc = field.clone()
        acc.index_add_(0, edges[:, 0], field[edges[:, 1]])
        acc.index_add_(0, edges[:, 1], field[edges[:, 0]])
        field = acc / (deg + 1)[:, None]
    return field / field.pow(2).sum(1).mean().sqrt().clamp(min=1e-12)


def random_direction(mesh: Meshes, kind: str, generator: torch.Generator) -> State:
    """A unit direction: "vertices" (a smooth field, RMS 1) or "camera" (a unit 6-vector
    of rotation in radians and translation in scene units)."""
    d = State.zeros(mesh.verts_packed().shape[0])  # on the CPU (the generator's device)
    if kind == "vertices":
        d.dv = smooth_field(mesh, generator)
    elif kind == "camera":
        u = torch.randn(6, generator=generator, dtype=torch.float64)
        u = u / u.norm()
        d.omega, d.tau = u[:3], u[3:]
    else:
        raise ValueError(f"kind must be 'vertices' or 'camera', got {kind!r}")
    return d.to(mesh.device)
