"""Camera pose recovery (diffrend.jobs.pose): metrics, a small fit, callback, seeds, errors."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import DATA

from diffrend import look_at_view_transform
from diffrend.io import default_mesh_path, load_mesh
from diffrend.jobs.pose import (
    PoseResult,
    PoseStep,
    evaluate_pose_recovery,
    fit_pose,
    random_rotation_away,
    render_pose_target,
    rotation_error_degrees,
)
from diffrend.jobs.views import normalize_meshes
from diffrend.transforms import axis_angle_to_matrix, random_rotations

SIZE = 64


@pytest.fixture(scope="module")
def scene():
    """The bundled cow, normalised, its true camera and its 64 px silhouette and colour."""
    mesh = normalize_meshes(load_mesh(default_mesh_path()))
    R, T = look_at_view_transform(2.7, 20.0, 40.0)
    sil, rgb = render_pose_target(mesh, R, T, SIZE)
    return mesh, R, T, sil, rgb


def _rot(axis: tuple[float, float, float], deg: float) -> torch.Tensor:
    a = torch.tensor(axis, dtype=torch.float64)
    return axis_angle_to_matrix((a / a.norm() * math.radians(deg))[None]).float()


def test_rotation_error_degrees_known_rotations():
    eye = torch.eye(3)[None]
    for axis, deg in (((0, 0, 1), 30.0), ((1, 2, 3), 90.0), ((1, 0, 0), 0.05),
                      ((0, 1, 0), 179.0)):
        R = _rot(axis, deg)
        assert rotation_error_degrees(R, eye).item() == pytest.approx(deg, abs=1e-3)
        assert rotation_error_degrees(eye, R).item() == pytest.approx(deg, abs=1e-3)
    # invariant under a common rotation; batched
    Q = random_rotations(5, generator=torch.Generator().manual_seed(1))
    R = torch.cat([_rot((1, 1, 0), d) for d in (10, 20, 30, 40, 50)])
    err = rotation_error_degrees(R @ Q, Q)
    assert err.shape == (5,)
    torch.testing.assert_close(err, torch.tensor([10.0, 20, 30, 40, 50]), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="R2"):
        rotation_error_degrees(R, Q[:2])


def test_random_rotation_away_angles_in_range():
    g = torch.Generator().manual_seed(0)
    R = random_rotations(1, generator=g)
    angles = torch.cat([rotation_error_degrees(random_rotation_away(R, 30, 60, g), R)
                        for _ in range(50)])
    assert bool((angles >= 30 - 1e-3).all()) and bool((angles <= 60 + 1e-3).all())
    assert angles.max() - angles.min() > 15  # spread over the range, not one value
    a = random_rotation_away(R, 30, 60, torch.Generator().manual_seed(5))
    b = random_rotation_away(R, 30, 60, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="min_deg"):
        random_rotation_away(R, 60, 30, g)


def test_render_pose_target(scene):
    _, _, _, sil, rgb = scene
    assert sil.shape == (SIZE, SIZE) and rgb.shape == (SIZE, SIZE, 3)
    assert set(sil.unique().tolist()) == {0.0, 1.0}
    assert 0.05 < sil.mean() < 0.6
    assert rgb[sil == 0].abs().max() == 0  # black background


def test_fit_pose_converges_from_the_start(scene):
    """One restart: plain local optimisation from 35 degrees off and a wrong distance."""
    mesh, R_true, T_true, sil, _ = scene
    init_R = random_rotation_away(R_true, 35, 35, torch.Generator().manual_seed(3))
    init_T = torch.tensor([[0.0, 0.0, 3.0]])
    res = fit_pose(mesh, sil, init_R, init_T, restarts=1, search_steps=40, refine_steps=20)
    assert isinstance(res, PoseResult)
    assert res.R.shape == (1, 3, 3) and res.T.shape == (1, 3)
    assert rotation_error_degrees(res.R, R_true).item() < 3.0  # measured 1.5
    assert abs(res.T[0, 2].item() - 2.7) < 0.1
    assert res.iou > 0.93
    assert len(res.history) == 40 + 20
    assert res.history[-1] < 0.3 * res.history[0]
    assert res.restarts[0]["source"] == "init" and res.winner == 0
    torch.testing.assert_close(res.restarts[0]["R0"], init_R)


def test_fit_pose_restarts_find_a_far_pose(scene):
    """90 degrees off is beyond the local basin: the screened restarts find the pose."""
    mesh, R_true, T_true, sil, _ = scene
    init_R = random_rotation_away(R_true, 90, 90, torch.Generator().manual_seed(0))
    res = fit_pose(mesh, sil, init_R, T_true, restarts=6, search_steps=40, refine_steps=20,
                   search_size=48, screen_pool=512, finalists=2, seed=0)
    assert rotation_error_degrees(res.R, R_true).item() < 5.0  # measured 1.5
    assert len(res.restarts) == 6
    assert [r["source"] for r in res.restarts] == ["init"] + ["screened"] * 5
    assert sum(r["refined"] for r in res.restarts) == 2
    assert res.restarts[res.winner]["refined"]


@pytest.mark.skipif(not (DATA / "teapot" / "teapot.obj").exists(), reason="no teapot.obj")
def test_evaluate_pose_recovery_teapot_reduced():
    """A reduced version of the quality target (20 seeds, default settings: see the module)."""
    out = evaluate_pose_recovery(DATA / "teapot" / "teapot.obj", seeds=2, fit_options=dict(
        restarts=8, search_steps=40, refine_steps=30, finalists=2))
    assert out["success_rate"] == 1.0, out
    assert len(out["errors_deg"]) == len(out["seconds"]) == 2


def test_fit_pose_with_rgb_term(scene):
    mesh, R_true, T_true, sil, rgb = scene
    init_R = random_rotation_away(R_true, 15, 15, torch.Generator().manual_seed(4))
    res = fit_pose(mesh, sil, init_R, T_true, target_rgb=rgb, restarts=1, search_steps=15,
                   refine_steps=5)
    assert math.isfinite(res.loss)
    assert rotation_error_degrees(res.R, R_true).item() < 15.0
    assert res.history[-1] < res.history[0]


def test_callback_every_step_and_early_stop(scene):
    mesh, R_true, T_true, sil, _ = scene
    init_R = random_rotation_away(R_true, 30, 30, torch.Generator().manual_seed(0))
    steps: list[PoseStep] = []
    res = fit_pose(mesh, sil, init_R, T_true, restarts=2, search_steps=3, refine_steps=2,
                   screen_pool=32, search_size=32, finalists=1, callback=steps.append)
    assert [(s.phase, s.step, s.restart) for s in steps[:6]] == [
        ("search", 0, 0), ("search", 0, 1), ("search", 1, 0), ("search", 1, 1),
        ("search", 2, 0), ("search", 2, 1)]
    assert [(s.phase, s.step, s.restart) for s in steps[6:]] == [
        ("refine", 0, res.winner), ("refine", 1, res.winner)]
    assert all(s.R.shape == (1, 3, 3) and s.T.shape == (1, 3) for s in steps)
    assert not res.stopped

    calls: list[PoseStep] = []

    def stop(step: PoseStep) -> bool:
        calls.append(step)
        return True

    res = fit_pose(mesh, sil, init_R, T_true, restarts=2, search_steps=10, refine_steps=10,
                   screen_pool=32, search_size=32, callback=stop)
    assert res.stopped
    assert len(calls) == 2  # the restarts of the first step, then no more
    assert len(res.history) == 1


def test_same_seed_same_result(scene):
    mesh, R_true, T_true, sil, _ = scene
    init_R = random_rotation_away(R_true, 60, 60, torch.Generator().manual_seed(1))
    kw = dict(restarts=3, search_steps=4, refine_steps=3, screen_pool=64, search_size=32)
    a = fit_pose(mesh, sil, init_R, T_true, seed=7, **kw)
    b = fit_pose(mesh, sil, init_R, T_true, seed=7, **kw)
    c = fit_pose(mesh, sil, init_R, T_true, seed=8, **kw)
    assert torch.equal(a.R, b.R) and torch.equal(a.T, b.T)
    assert a.history == b.history and a.loss == b.loss and a.iou == b.iou
    assert not torch.equal(a.restarts[1]["R0"], c.restarts[1]["R0"])  # seed draws the starts


def test_bad_input_names_the_argument(scene):
    mesh, R, T, sil, rgb = scene
    ok = dict(restarts=1, search_steps=1, refine_steps=0)
    cases = [
        ("target_silhouette", dict(target_silhouette=sil[..., None])),
        ("target_silhouette", dict(target_silhouette=sil[None])),
        ("target_silhouette", dict(target_silhouette=torch.zeros_like(sil))),
        ("target_silhouette", dict(target_silhouette=sil * 2)),
        ("init_R", dict(init_R=torch.full_like(R, math.nan))),
        ("init_R", dict(init_R=R[..., :2])),
        ("init_R", dict(init_R=2 * R)),
        ("init_T", dict(init_T=torch.tensor([[0.0, math.nan, 2.7]]))),
        ("init_T", dict(init_T=torch.tensor([[0.0, 0.0, -2.7]]))),
        ("restarts", dict(restarts=0)),
        ("search_steps", dict(search_steps=-1)),
        ("lr", dict(lr=0.0)),
        ("fov", dict(fov=180.0)),
        ("target_rgb", dict(target_rgb=rgb[:32])),
        ("mesh", dict(mesh=mesh.extend(2))),
    ]
    for name, change in cases:
        kw = dict(mesh=mesh, target_silhouette=sil, init_R=R, init_T=T, **ok)
        kw.update(change)
        with pytest.raises(ValueError, match=name):
            fit_pose(**kw)
