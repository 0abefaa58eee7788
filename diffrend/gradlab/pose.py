"""Camera-pose recovery with each method, PyTorch3D's camera-position tutorial made a test.

As in the tutorial, the parameter is the camera position ``p`` (3,); the camera looks at the
origin (``R = look_at_rotation(p)``, ``T = -R^T p``), the loss is ``sum((S - T_ref)^2)`` of
the silhouette against a binary target mask, optimised by Adam. Each trial draws a target
position on a sphere of radius ``dist`` and a start at a random angle in ``[min_deg,
max_deg]`` from it (same distance); every method runs from the same starts. A trial
converges when the final camera direction is within ``success_deg`` of the target's.

The starts of one method are optimised together in small batches: Adam is elementwise and
the loss is a sum over trials, so this is exactly independent runs, only faster.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from ..cameras import FoVPerspectiveCameras, look_at_rotation
from ..structures import Meshes
from .methods import MethodSpec


@dataclass(frozen=True)
class PoseTrials:
    """Targets and starts (S, 3) camera positions."""

    targets: torch.Tensor
    starts: torch.Tensor


@dataclass(frozen=True)
class PoseRow:
    """One method's results over all trials."""

    method: str
    image_size: int
    trials: int
    converged: int
    median_error_deg: float
    median_steps_to_converge: float | None
    seconds_per_trial: float

    def as_dict(self) -> dict:
        return asdict(self)


def draw_trials(n: int, dist: float = 3.0, min_deg: float = 60.0, max_deg: float = 120.0,
                seed: int = 0) -> PoseTrials:
    """``n`` target positions (uniform on the sphere of radius ``dist``, elevation within
    +-70 degrees so the up vector stays usable) and starts ``min_deg..max_deg`` away."""
    if n < 1 or not 0 <= min_deg <= max_deg <= 180:
        raise ValueError(f"need n >= 1 and 0 <= min_deg <= max_deg <= 180, got {n}, "
                         f"{min_deg}, {max_deg}")
    gen = torch.Generator().manual_seed(seed)
    targets, starts = [], []
    while len(targets) < n:
        d = torch.randn(3, generator=gen, dtype=torch.float64)
        d = d / d.norm()
        axis = torch.linalg.cross(d, torch.randn(3, generator=gen, dtype=torch.float64))
        axis = axis / axis.norm()
        angle = math.radians(min_deg + (max_deg - min_deg)
                             * float(torch.rand((), generator=gen, dtype=torch.float64)))
        # Rodrigues: d rotated about an axis perpendicular to it.
        s = d * math.cos(angle) + torch.linalg.cross(axis, d) * math.sin(angle)
        if abs(float(d[1])) > math.sin(math.radians(70)) or abs(float(s[1])) > 0.99:
            continue
        targets.append(d * dist)
        starts.append(s * dist)
    return PoseTrials(torch.stack(targets), torch.stack(starts))


def _cameras(p: torch.Tensor, fov: float) -> FoVPerspectiveCameras:
    R = look_at_rotation(p, device=p.device)
    T = -(R.transpose(1, 2) @ p[:, :, None])[:, :, 0]
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, device=p.device)


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(S,) angles between the rows of a and b (S, 3), degrees."""
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp(min=1e-12)
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


def recover_poses(
    mesh: Meshes,
    spec: MethodSpec,
    trials: PoseTrials,
    steps: int = 200,
    lr: float = 0.05,
    fov: float = 60.0,
    success_deg: float = 5.0,
    batch: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> PoseRow:
    """Run the tutorial's optimisation from every start with ``spec``'s gradients.

    Args:
        mesh: one mesh (float32).
        spec: the method, image size and soft settings.
        trials: targets and starts.
        steps, lr: Adam steps and learning rate (the tutorial's 200 and 0.05).
        fov: field of view, degrees.
        success_deg: converged when the final direction error is below this.
        batch: trials optimised together (None: from a memory budget).
        progress: called after every Adam step with the number of trials it advanced
            (``steps * len(trials)`` in all).
    """
    n = trials.targets.shape[0]
    size = spec.image_size
    device = mesh.device
    if batch is None:
        per_trial = size * size * (spec.faces_per_pixel if spec.method == "soft" else 1) * 60
        batch = max(1, min(n, (512 * 2**20) // per_trial))
    final = torch.empty(n, 3, dtype=torch.float64)
    first_hit = torch.full((n,), -1, dtype=torch.long)
    t0 = time.perf_counter()
    for lo in range(0, n, batch):
        idx = slice(lo, min(n, lo + batch))
        tgt = trials.targets[idx].float().to(device)
        with torch.no_grad():
            ref = (spec.render(mesh, _cameras(tgt, fov), size) if spec.method == "hard"
                   else MethodSpec("hard", "hard", size).render(mesh, _cameras(tgt, fov)))
            ref = (ref > 0.5).float()
        p = trials.starts[idx].float().to(device).requires_grad_(True)
        tgt64 = trials.targets[idx].to(device)
        opt = torch.optim.Adam([p], lr=lr)
        hits = []  # per step, (B,) bool on the device: read back once per batch
        for _ in range(steps):
            opt.zero_grad()
            sil = spec.render(mesh, _cameras(p, fov), size)
            loss = ((sil - ref) ** 2).sum()
            if loss.requires_grad:
                loss.backward()
                opt.step()
            with torch.no_grad():
                hits.append(angle_deg(p.double(), tgt64) < success_deg)
            if progress is not None:
                progress(idx.stop - idx.start)
        final[idx] = p.detach().double().cpu()
        if hits:
            hit = torch.stack(hits).cpu()  # (steps, B)
            first = torch.where(hit.any(0), hit.float().argmax(0) + 1, -1)
            first_hit[idx] = first
    seconds = time.perf_counter() - t0
    err = angle_deg(final, trials.targets)
    ok = err < success_deg
    reached = [int(s) for s, good in zip(first_hit, ok, strict=True) if good and s > 0]
    return PoseRow(spec.label, size, n, int(ok.sum()), float(err.median()),
                   float(statistics.median(reached)) if reached else None, seconds / n)
