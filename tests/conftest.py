"""Shared test fixtures: where the PyTorch3D goldens live and how to load a case."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

# Idle OpenMP threads wait passively, as diffrend sets when imported before torch (here torch
# comes first): the kernels are not slowed by torch's spinning threads, and diffrend's
# warning about them stays out of every test (tests/test_threads.py checks it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

# Without a GPU the Triton kernels' tests run them in Triton's interpreter, which must be
# chosen before triton is first imported (afterwards its jit functions stay compiled-only,
# whichever test module imports it first).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Everything the tests read is in the repository: PyTorch3D 0.7.9's goldens in
# tests/golden (see its README), meshes in the package's own data folder.
GOLDEN = Path(__file__).resolve().parent / "golden"
DATA = Path(__file__).resolve().parents[1] / "diffrend" / "data"


def golden_cases(prefix: str) -> list[str]:
    """Names of the golden cases whose name starts with `prefix` (empty if goldens absent)."""
    if not GOLDEN.exists():
        return []
    return sorted(p.stem for p in GOLDEN.glob(f"{prefix}*.npz"))


def load_golden(name: str) -> dict:
    """Load one golden case as a dict of numpy arrays; `settings` is decoded from JSON."""
    path = GOLDEN / f"{name}.npz"
    if not path.exists():
        pytest.fail(f"golden case {name} not found under {GOLDEN}")
    with np.load(path) as z:
        out = {k: z[k] for k in z.files}
    if "settings" in out:
        out["settings"] = json.loads(str(out["settings"]))
    return out


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def camera_from_golden(g: dict):
    """Rebuild the camera of a golden case: `cam_<name>` arrays are constructor arguments."""
    from diffrend.cameras import (
        FoVOrthographicCameras,
        FoVPerspectiveCameras,
        OrthographicCameras,
        PerspectiveCameras,
    )

    kinds = {
        "fov_perspective": FoVPerspectiveCameras,
        "perspective": PerspectiveCameras,
        "fov_orthographic": FoVOrthographicCameras,
        "orthographic": OrthographicCameras,
    }
    args = {}
    for key, value in g.items():
        if not key.startswith("cam_") or key == "cam_kind":
            continue
        args[key[4:]] = value.item() if value.ndim == 0 else torch.from_numpy(value)
    return kinds[str(g["cam_kind"])](**args)
