"""Rotation conversions, SO(3) maps and Transform3d.

Tolerances: round trips run in float64 and are compared at 1e-10 (exact maths, rounding
only); float32 checks use 1e-5.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffrend.transforms import (
    Rotate,
    RotateAxisAngle,
    Scale,
    Transform3d,
    Translate,
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    euler_angles_to_matrix,
    hat,
    hat_inv,
    matrix_to_axis_angle,
    matrix_to_euler_angles,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    quaternion_apply,
    quaternion_invert,
    quaternion_multiply,
    quaternion_raw_multiply,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    random_quaternions,
    random_rotation,
    random_rotations,
    rotation_6d_to_matrix,
    se3_log_map,
    so3_exp_map,
    so3_exponential_map,
    so3_log_map,
    so3_relative_angle,
    so3_rotation_angle,
    standardize_quaternion,
)

F64 = torch.float64
CONVENTIONS = ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "XYX", "XZX", "YXY", "YZY", "ZXZ", "ZYZ"]
close64 = dict(rtol=1e-10, atol=1e-10)  # exact maths in float64


def _rots(n: int = 200) -> torch.Tensor:
    return random_rotations(n, dtype=F64)


def _is_rotation(R: torch.Tensor, tol: float = 1e-10) -> bool:
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    ortho = torch.allclose(R @ R.transpose(-1, -2), eye, atol=tol)
    return ortho and torch.allclose(
        torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=R.dtype), atol=tol
    )


quat_strategy = st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4).filter(
    lambda q: sum(c * c for c in q) > 1e-2
)


# --------------------------------------------------------------------------- conversions


def test_random_rotations_are_rotations():
    R = _rots(500)
    assert R.shape == (500, 3, 3)
    assert _is_rotation(R)


@settings(max_examples=60, deadline=None)
@given(quat_strategy)
def test_quaternion_matrix_round_trip(q):
    q = torch.tensor(q, dtype=F64)
    q = standardize_quaternion(q / q.norm())
    R = quaternion_to_matrix(q)
    assert _is_rotation(R)
    q2 = matrix_to_quaternion(R)
    # q and -q are the same rotation; both are standard, so equal unless w == 0.
    sign = 1.0 if float(q[0]) > 1e-6 else float(torch.sign((q * q2).sum()))
    torch.testing.assert_close(q2 * sign, q, **close64)


def test_matrix_quaternion_round_trip_batched():
    R = _rots().reshape(10, 20, 3, 3)
    q = matrix_to_quaternion(R)
    assert q.shape == (10, 20, 4) and bool((q[..., 0] >= 0).all())
    torch.testing.assert_close(quaternion_to_matrix(q), R, **close64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3))
def test_axis_angle_round_trips(v):
    v = torch.tensor(v, dtype=F64)
    if float(v.norm()) > math.pi - 1e-3:  # keep the angle inside [0, pi) so v is unique
        v = v / v.norm() * (math.pi - 1e-3)
    R = axis_angle_to_matrix(v)
    assert _is_rotation(R)
    torch.testing.assert_close(matrix_to_axis_angle(R), v, rtol=1e-9, atol=1e-9)
    q = axis_angle_to_quaternion(v)
    torch.testing.assert_close(quaternion_to_axis_angle(q), v, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(quaternion_to_matrix(q), R, **close64)


def test_axis_angle_matches_quaternion_route():
    v = torch.randn(100, 3, dtype=F64) * 2
    torch.testing.assert_close(
        axis_angle_to_matrix(v), quaternion_to_matrix(axis_angle_to_quaternion(v)), **close64
    )


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_euler_round_trip(convention):
    R = _rots()
    angles = matrix_to_euler_angles(R, convention)
    torch.testing.assert_close(euler_angles_to_matrix(angles, convention), R, rtol=1e-9, atol=1e-9)
    # angles -> matrix -> angles within the canonical ranges
    torch.testing.assert_close(
        matrix_to_euler_angles(euler_angles_to_matrix(angles, convention), convention),
        angles,
        rtol=1e-8,
        atol=1e-8,
    )
    mid = angles[:, 1]
    if convention[0] == convention[2]:
        assert bool(((mid >= 0) & (mid <= math.pi)).all())
    else:
        assert bool(((mid >= -math.pi / 2) & (mid <= math.pi / 2)).all())


def test_euler_single_axis_matches_axis_angle():
    a = torch.tensor([0.3, -1.2, 2.0], dtype=F64)
    R = euler_angles_to_matrix(a, "ZYX")
    expected = (
        axis_angle_to_matrix(torch.tensor([0, 0, 0.3], dtype=F64))
        @ axis_angle_to_matrix(torch.tensor([0, -1.2, 0], dtype=F64))
        @ axis_angle_to_matrix(torch.tensor([2.0, 0, 0], dtype=F64))
    )
    torch.testing.assert_close(R, expected, **close64)


def test_rotation_6d_round_trip():
    R = _rots()
    d6 = matrix_to_rotation_6d(R)
    assert d6.shape == (200, 6)
    torch.testing.assert_close(rotation_6d_to_matrix(d6), R, **close64)
    # Gram-Schmidt makes any generic 6-vector a rotation
    assert _is_rotation(rotation_6d_to_matrix(torch.randn(50, 6, dtype=F64)))


def test_quaternion_algebra():
    q1 = matrix_to_quaternion(_rots(50))
    q2 = matrix_to_quaternion(_rots(50))
    # composition matches the matrix product (column vectors: apply q2 then q1)
    torch.testing.assert_close(
        quaternion_to_matrix(quaternion_multiply(q1, q2)),
        quaternion_to_matrix(q1) @ quaternion_to_matrix(q2),
        **close64,
    )
    assert bool((quaternion_multiply(q1, q2)[:, 0] >= 0).all())
    ident = quaternion_multiply(q1, quaternion_invert(q1))
    torch.testing.assert_close(
        ident, torch.tensor([1.0, 0, 0, 0], dtype=F64).expand_as(ident), **close64
    )
    p = torch.randn(50, 3, dtype=F64)
    torch.testing.assert_close(
        quaternion_apply(q1, p), (quaternion_to_matrix(q1) @ p[:, :, None])[:, :, 0], **close64
    )
    flipped = standardize_quaternion(-q1)
    torch.testing.assert_close(flipped, q1, **close64)


def test_rotation_conventions_are_counter_clockwise():
    # +90 degrees about Z takes +X to +Y (column vectors)
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=F64))
    torch.testing.assert_close(
        R @ torch.tensor([1.0, 0, 0], dtype=F64), torch.tensor([0.0, 1, 0], dtype=F64), **close64
    )
    q = axis_angle_to_quaternion(torch.tensor([0.0, 0.0, math.pi / 2], dtype=F64))
    torch.testing.assert_close(
        q, torch.tensor([math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], dtype=F64), **close64
    )


def test_conversion_bad_inputs():
    with pytest.raises(ValueError, match="quaternions"):
        quaternion_to_matrix(torch.zeros(3))
    with pytest.raises(ValueError, match="matrix"):
        matrix_to_quaternion(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="convention"):
        euler_angles_to_matrix(torch.zeros(3), "XXY")
    with pytest.raises(ValueError, match="convention"):
        matrix_to_euler_angles(torch.eye(3), "XYW")
    with pytest.raises(ValueError, match="d6"):
        rotation_6d_to_matrix(torch.zeros(5))
    with pytest.raises(ValueError, match="axis_angle"):
        axis_angle_to_matrix(torch.zeros(2, 4))


# --------------------------------------------------------------------------- SO(3)


@pytest.mark.parametrize(
    "angle", [0.0, 1e-12, 1e-8, 1e-4, 0.5, 2.0, math.pi - 1e-3, math.pi - 1e-6]
)
def test_so3_exp_log_round_trip_and_finite_grads(angle):
    axes = torch.nn.functional.normalize(torch.randn(8, 3, dtype=F64), dim=1)
    v = (axes * angle).requires_grad_(True)
    R = so3_exp_map(v)
    assert _is_rotation(R.detach())
    v2 = so3_log_map(R)
    # the quaternion route is well conditioned at both ends: float64 rounding only
    torch.testing.assert_close(v2, v.detach(), rtol=1e-12, atol=1e-12)
    (v2 * torch.randn_like(v2)).sum().backward()
    assert bool(torch.isfinite(v.grad).all())
    # exp alone also has finite gradients
    v.grad = None
    so3_exp_map(v).sum().backward()
    assert bool(torch.isfinite(v.grad).all())


def test_so3_log_at_exactly_pi():
    R = so3_exp_map(torch.tensor([[math.pi, 0, 0], [0, 0, -math.pi]], dtype=F64))
    v = so3_log_map(R)
    torch.testing.assert_close(v.norm(dim=1), torch.full((2,), math.pi, dtype=F64), **close64)
    torch.testing.assert_close(so3_exp_map(v), R, **close64)


def test_so3_gradcheck_small_angles():
    v = (torch.randn(3, 3, dtype=F64) * 1e-5).requires_grad_(True)
    assert torch.autograd.gradcheck(so3_exp_map, (v,))
    R = so3_exp_map(torch.randn(3, 3, dtype=F64)).requires_grad_(True)
    assert torch.autograd.gradcheck(so3_log_map, (R,))


def test_hat_and_relative_angle():
    v = torch.randn(10, 3, dtype=F64)
    u = torch.randn(10, 3, dtype=F64)
    torch.testing.assert_close(
        (hat(v) @ u[:, :, None])[:, :, 0], torch.cross(v, u, dim=1), **close64
    )
    torch.testing.assert_close(hat_inv(hat(v)), v, **close64)
    with pytest.raises(ValueError, match="skew"):
        hat_inv(torch.eye(3)[None])
    with pytest.raises(ValueError, match="v"):
        hat(torch.zeros(3))
    R1 = _rots(10)
    angles = torch.linspace(0.1, 3.0, 10, dtype=F64)
    axes = torch.nn.functional.normalize(torch.randn(10, 3, dtype=F64), dim=1)
    R2 = so3_exp_map(axes * angles[:, None]) @ R1
    torch.testing.assert_close(so3_relative_angle(R1, R2), angles, rtol=1e-8, atol=1e-8)
    # identical rotations: clamped acos keeps the gradient finite
    Rg = R1.clone().requires_grad_(True)
    so3_relative_angle(Rg, R1).sum().backward()
    assert bool(torch.isfinite(Rg.grad).all())


# --------------------------------------------------------------------------- Transform3d


def test_transform3d_compose_order_and_inverse():
    R = _rots(1).float()
    p = torch.randn(7, 3)
    t = Transform3d().scale(2.0).rotate(R).translate(1.0, 2.0, 3.0)
    expected = (p * 2.0) @ R[0] + torch.tensor([1.0, 2.0, 3.0])
    torch.testing.assert_close(t.transform_points(p), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(t.inverse().transform_points(expected), p, rtol=1e-5, atol=1e-5)
    t2 = Scale(2.0).compose(Rotate(R), Translate(torch.tensor([[1.0, 2.0, 3.0]])))
    torch.testing.assert_close(t2.get_matrix(), t.get_matrix())
    assert len(t) == 1 and t.get_matrix().shape == (1, 4, 4)


def test_transform3d_broadcasting_shapes():
    t1 = Translate(torch.randn(1, 3))
    tn = Translate(torch.randn(4, 3))
    assert t1.transform_points(torch.randn(5, 3)).shape == (5, 3)
    assert t1.transform_points(torch.randn(2, 5, 3)).shape == (2, 5, 3)
    assert tn.transform_points(torch.randn(5, 3)).shape == (4, 5, 3)
    assert tn.transform_points(torch.randn(1, 5, 3)).shape == (4, 5, 3)
    assert len(t1.compose(tn)) == 4
    with pytest.raises(ValueError, match="batch"):
        tn.transform_points(torch.randn(3, 5, 3))
    assert len(tn[1]) == 1 and len(tn[[0, 2]]) == 2 and len(tn.stack(t1)) == 5


def test_transform_points_eps_clamp():
    # A matrix whose homogeneous w equals the point's z.
    M = torch.eye(4)
    M[2, 3], M[3, 3] = 1.0, 0.0
    t = Transform3d(matrix=M)
    p = torch.tensor([[1.0, 2.0, 0.0], [1.0, 2.0, -1e-4], [1.0, 2.0, 0.5]])
    out = t.transform_points(p, eps=1e-2)
    torch.testing.assert_close(out[0], torch.tensor([100.0, 200.0, 0.0]))  # w == 0 -> +eps
    torch.testing.assert_close(out[1], torch.tensor([-100.0, -200.0, 1e-2]))  # sign kept
    torch.testing.assert_close(out[2], torch.tensor([2.0, 4.0, 1.0]))  # untouched
    assert bool(torch.isinf(t.transform_points(p[:1])).any())  # no eps: plain divide


def test_transform_normals_stay_perpendicular():
    t = Scale(1.0, 3.0, 0.5).rotate(_rots(1).float())
    tangent = torch.tensor([[1.0, -1.0, 0.0]])
    normal = torch.tensor([[1.0, 1.0, 0.0]])
    lin = Transform3d(matrix=t.get_matrix().clone())
    tangent_out = lin.transform_points(tangent) - lin.transform_points(torch.zeros(1, 3))
    normal_out = t.transform_normals(normal)
    assert abs(float((tangent_out * normal_out).sum())) < 1e-5


def test_rotate_axis_angle_and_constructors():
    p = torch.tensor([[1.0, 0.0, 0.0]])
    torch.testing.assert_close(
        RotateAxisAngle(90.0, "Z").transform_points(p),
        torch.tensor([[0.0, 1.0, 0.0]]),
        rtol=0,
        atol=1e-6,
    )
    t = RotateAxisAngle(torch.tensor([0.0, 90.0, 180.0]), axis="y")
    assert len(t) == 3
    torch.testing.assert_close(
        t.transform_points(p)[1], torch.tensor([[0.0, 0.0, -1.0]]), rtol=0, atol=1e-6
    )
    torch.testing.assert_close(
        Scale(torch.tensor([1.0, 2.0])).get_matrix()[1].diagonal(),
        torch.tensor([2.0, 2.0, 2.0, 1.0]),
    )
    torch.testing.assert_close(
        Translate(1.0, torch.tensor([2.0, 3.0]), 0.0).get_matrix()[:, 3, :3],
        torch.tensor([[1.0, 2.0, 0.0], [1.0, 3.0, 0.0]]),
    )


def test_transform3d_is_differentiable_and_keeps_float64():
    xyz = torch.randn(2, 3, dtype=F64, requires_grad=True)
    ang = torch.tensor([0.3, 1.0], dtype=F64, requires_grad=True)
    p = torch.randn(2, 4, 3, dtype=F64)

    def f(xyz, ang):
        return (
            RotateAxisAngle(ang, "X", degrees=False).translate(xyz).scale(1.5).transform_points(p)
        )

    assert f(xyz, ang).dtype == F64
    assert torch.autograd.gradcheck(f, (xyz, ang))


def test_transform3d_bad_inputs():
    with pytest.raises(ValueError, match="matrix"):
        Transform3d(matrix=torch.eye(3))
    with pytest.raises(ValueError, match="points"):
        Transform3d().transform_points(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="normals"):
        Transform3d().transform_normals(torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match="R"):
        Rotate(torch.eye(4))
    with pytest.raises(ValueError, match="axis"):
        RotateAxisAngle(10.0, axis="W")
    with pytest.raises(ValueError, match="Translate"):
        Translate(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="Translate"):
        Translate(1.0, 2.0)
    with pytest.raises(ValueError, match="non-broadcastable"):
        Scale(torch.ones(2), torch.ones(3), 1.0)
    with pytest.raises(ValueError, match="compose"):
        Transform3d().compose(torch.eye(4))


# --------------------------------------------------------------------------- PyTorch3D parity


SCRIPTABLE_1ARG = [
    (axis_angle_to_matrix, lambda: torch.randn(4, 3)),
    (axis_angle_to_quaternion, lambda: torch.randn(4, 3)),
    (matrix_to_axis_angle, lambda: random_rotations(4)),
    (matrix_to_quaternion, lambda: random_rotations(4)),
    (matrix_to_rotation_6d, lambda: random_rotations(4)),
    (quaternion_to_matrix, lambda: random_quaternions(4)),
    (quaternion_to_axis_angle, lambda: random_quaternions(4)),
    (quaternion_invert, lambda: random_quaternions(4)),
    (standardize_quaternion, lambda: torch.randn(4, 4)),
    (rotation_6d_to_matrix, lambda: torch.randn(4, 6)),
    (so3_exp_map, lambda: torch.randn(4, 3)),
    (so3_log_map, lambda: random_rotations(4)),
    (so3_rotation_angle, lambda: random_rotations(4)),
    (hat, lambda: torch.randn(4, 3)),
]


# torch 2.x deprecates torch.jit.script, but PyTorch3D code still scripts these functions.
no_jit_warning = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


@no_jit_warning
@pytest.mark.parametrize("fn, make", SCRIPTABLE_1ARG, ids=lambda v: getattr(v, "__name__", ""))
def test_functions_compile_with_torchscript(fn, make):
    x = make()
    torch.testing.assert_close(torch.jit.script(fn)(x), fn(x))


@no_jit_warning
def test_two_argument_functions_compile_with_torchscript():
    a, b = random_quaternions(3), random_quaternions(3)
    for fn in (quaternion_multiply, quaternion_raw_multiply):
        torch.testing.assert_close(torch.jit.script(fn)(a, b), fn(a, b))
    p = torch.randn(3, 3)
    torch.testing.assert_close(torch.jit.script(quaternion_apply)(a, p), quaternion_apply(a, p))
    e = torch.randn(3, 3)
    for fn in (euler_angles_to_matrix, matrix_to_euler_angles):
        arg = e if fn is euler_angles_to_matrix else random_rotations(3)
        torch.testing.assert_close(torch.jit.script(fn)(arg, "ZYX"), fn(arg, "ZYX"))
    R1, R2 = random_rotations(3), random_rotations(3)
    torch.testing.assert_close(
        torch.jit.script(so3_relative_angle)(R1, R2), so3_relative_angle(R1, R2)
    )
    torch.testing.assert_close(torch.jit.script(hat_inv)(hat(p)), p)


@no_jit_warning
def test_random_functions_compile_with_torchscript():
    for fn, shape in ((random_quaternions, (5, 4)), (random_rotations, (5, 3, 3))):
        scripted = torch.jit.script(fn)
        out = scripted(5, torch.float64, "cpu", torch.Generator().manual_seed(3))
        assert out.shape == shape and out.dtype == F64
        torch.testing.assert_close(out, fn(5, F64, "cpu", torch.Generator().manual_seed(3)))
    R = torch.jit.script(random_rotation)(torch.float64)
    assert R.shape == (3, 3) and _is_rotation(R)


def test_random_rotation_single_and_seeded():
    R = random_rotation(dtype=F64, generator=torch.Generator().manual_seed(7))
    assert R.shape == (3, 3) and R.dtype == F64 and _is_rotation(R)
    again = random_rotation(dtype=F64, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(R, again, rtol=0, atol=0)
    assert not torch.allclose(R, random_rotation(dtype=F64))


def test_matrix_to_rotation_6d_is_not_a_view():
    R = _rots(5)
    before = R.clone()
    d6 = matrix_to_rotation_6d(R)
    torch.testing.assert_close(d6, R[:, :2, :].reshape(5, 6), rtol=0, atol=0)
    d6 += 1.0
    torch.testing.assert_close(R, before, rtol=0, atol=0)


def test_fast_flag_gives_the_same_rotations():
    v = torch.randn(20, 3, dtype=F64)
    torch.testing.assert_close(axis_angle_to_matrix(v, fast=True), axis_angle_to_matrix(v))
    R = _rots(20)
    torch.testing.assert_close(matrix_to_axis_angle(R, fast=True), matrix_to_axis_angle(R))


def test_so3_errors_name_the_argument_and_keep_pytorch3d_wording():
    with pytest.raises(ValueError, match=r"log_rot .*Input tensor shape has to be Nx3\."):
        so3_exp_map(torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"R .*Input has to be a batch of 3x3 Tensors\."):
        so3_log_map(torch.randn(5, 3, 5))
    with pytest.raises(ValueError, match="v "):
        hat(torch.randn(5, 2))


def test_so3_exponential_map_is_a_deprecated_alias():
    v = torch.randn(6, 3, dtype=F64)
    with pytest.warns(DeprecationWarning, match="so3_exp_map"):
        R = so3_exponential_map(v)
    torch.testing.assert_close(R, so3_exp_map(v), rtol=0, atol=0)


def test_compose_is_lazy_and_batch_errors_surface_in_get_matrix():
    a, b = Scale(torch.ones(2)), Translate(torch.zeros(3, 3))
    t = a.compose(b)  # incompatible batches (2 vs 3): no error yet
    assert t._transforms == [b]
    with pytest.raises(ValueError, match="batch"):
        t.get_matrix()
    # the composed list grows by concatenation; the originals are untouched
    c = Rotate(_rots(1).float())
    tc = a.compose(c).compose(Scale(2.0))
    assert len(tc._transforms) == 2 and tc._transforms[0] is c and a._transforms == []


def test_get_matrix_returns_a_new_tensor():
    t = Translate(torch.tensor([[1.0, 2.0, 3.0]]))
    m = t.get_matrix()
    m.zero_()
    assert float(t.get_matrix()[0, 3, 0]) == 1.0


def test_to_returns_self_only_when_nothing_changes():
    t = Transform3d().rotate(_rots(1).float()).translate(1.0, 2.0, 3.0)
    assert t.to("cpu") is t and t.to(torch.device("cpu")) is t and t.cpu() is t
    copied = t.to("cpu", copy=True)
    assert copied is not t and copied._matrix is not t._matrix
    torch.testing.assert_close(copied.get_matrix(), t.get_matrix())
    t64 = t.to("cpu", dtype=F64)
    assert t64 is not t and t64.dtype == F64 and t.dtype == torch.float32
    assert all(inner.dtype == F64 for inner in t64._transforms)
    assert t64.get_matrix().dtype == F64
    torch.testing.assert_close(t64.get_matrix().float(), t.get_matrix())


def test_dtype_propagates_to_composed_transforms():
    t = Transform3d(dtype=F64).rotate(_rots(1)).rotate_axis_angle(30.0, "Y").translate(1, 2, 3)
    t = t.scale(0.5)
    assert t.dtype == F64 and all(inner.dtype == F64 for inner in t._transforms)
    assert t.transform_points(torch.randn(4, 3, dtype=F64)).dtype == F64


def test_clone_copies_every_matrix_and_keeps_the_class():
    r = Rotate(_rots(2).float())
    rc = r.clone()
    assert type(rc) is Rotate and rc._matrix is not r._matrix
    t = Transform3d().compose(r, Translate(torch.randn(2, 3)))
    tc = t.clone()
    for orig, copy_ in zip(t._transforms, tc._transforms, strict=True):
        assert copy_ is not orig and copy_._matrix is not orig._matrix
    torch.testing.assert_close(tc.get_matrix(), t.get_matrix(), rtol=0, atol=0)


def test_indexing_keeps_the_subclass():
    xyz = torch.randn(4, 3)
    for t, cls in (
        (Translate(xyz), Translate),
        (Scale(xyz.abs() + 0.1), Scale),
        (Rotate(_rots(4).float()), Rotate),
        (RotateAxisAngle(torch.tensor([10.0, 20.0, 30.0, 40.0]), "Z"), Rotate),
        (Translate(xyz).compose(Scale(2.0)), Transform3d),
    ):
        for index in (1, -1, [0, 2], slice(1, 3), torch.tensor([True, False, True, True])):
            sub = t[index]
            assert type(sub) is cls
            expected = t.get_matrix()[[index] if isinstance(index, int) else index]
            torch.testing.assert_close(sub.get_matrix(), expected)
    empty = Translate(xyz)[[]]
    assert len(empty) == 0 and empty.get_matrix().numel() == 0
    for bad in (1.5, torch.tensor([1.0, 0.0])):
        with pytest.raises(IndexError):
            Translate(xyz)[bad]


@pytest.mark.parametrize("invert_composed", [False, True])
def test_inverse_of_a_chain(invert_composed):
    torch.manual_seed(0)
    chain = [
        Translate(torch.randn(3, 3, dtype=F64)),
        Rotate(so3_exp_map(torch.randn(3, 3, dtype=F64))),
        Scale(torch.rand(3, 3, dtype=F64) + 0.5),
        RotateAxisAngle(torch.tensor([10.0, 50.0, 90.0], dtype=F64), "X"),
        Transform3d(matrix=torch.eye(4, dtype=F64) + 0.1 * torch.randn(4, 4, dtype=F64)),
    ]
    t = chain[0].compose(*chain[1:])
    inv = t.inverse(invert_composed=invert_composed)
    eye = torch.eye(4, dtype=F64).expand(3, 4, 4)
    torch.testing.assert_close(inv.get_matrix() @ t.get_matrix(), eye, **close64)
    # closed-form inverses of the subclasses match the general one
    for part in chain:
        torch.testing.assert_close(
            part.inverse()._matrix, torch.linalg.inv(part._matrix), **close64
        )


def test_get_se3_log_matches_se3_log_map():
    R = _rots(6)
    T = torch.randn(6, 3, dtype=F64)
    t = Rotate(R).translate(T)
    torch.testing.assert_close(t.get_se3_log(), se3_log_map(t.get_matrix()), **close64)
    # pure translation: the log is (T, 0)
    log = Translate(T).get_se3_log()
    torch.testing.assert_close(log, torch.cat((T, torch.zeros_like(T)), 1), **close64)
    with pytest.raises(ValueError, match="rigid"):
        Transform3d(matrix=torch.rand(2, 4, 4) + 0.1).get_se3_log()


@pytest.mark.parametrize("P", [5, 20000])  # the elementwise path and the baddbmm one
@pytest.mark.parametrize(("M", "N"), [(1, 1), (2, 2), (1, 3), (3, 1)])
def test_apply_matrix_is_the_homogeneous_product(P: int, M: int, N: int) -> None:
    from diffrend.transforms.transform3d import apply_matrix

    g = torch.Generator().manual_seed(P + M + N)
    points = torch.randn(M, P, 3, generator=g, dtype=torch.float64)
    matrix = torch.randn(N, 4, 4, generator=g, dtype=torch.float64)
    want = torch.cat((points, torch.ones_like(points[..., :1])), -1) @ matrix
    got = apply_matrix(points, matrix)
    assert got.shape == (max(M, N), P, 4)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert apply_matrix(points.float(), matrix).dtype == torch.float64  # promoted


@pytest.mark.parametrize("P", [4, 9000])
def test_apply_matrix_gradients(P: int) -> None:
    from diffrend.transforms.transform3d import apply_matrix

    g = torch.Generator().manual_seed(P)
    points = torch.randn(1, P, 3, generator=g, dtype=torch.float64, requires_grad=True)
    matrix = torch.randn(2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    if P > 100:  # gradcheck is slow on many points: the analytic gradient, checked directly
        apply_matrix(points, matrix).sum().backward()
        # d sum / d p_i = sum over batches and columns of row i; d sum / d m[n, i, j] =
        # the sum over points of [p, 1]_i
        torch.testing.assert_close(points.grad[0],
                                   matrix.detach()[:, :3].sum((0, 2)).expand(P, 3))
        homo_sum = torch.cat((points.detach()[0].sum(0), torch.tensor([float(P)],
                                                                     dtype=torch.float64)))
        torch.testing.assert_close(matrix.grad, homo_sum[None, :, None].expand(2, 4, 4))
    else:
        assert torch.autograd.gradcheck(apply_matrix, (points, matrix))


def test_apply_matrix_batch_mismatch_is_named() -> None:
    from diffrend.transforms.transform3d import apply_matrix

    with pytest.raises(ValueError, match=r"batch size of points \(2\) and of the transform"):
        apply_matrix(torch.zeros(2, 4, 3), torch.zeros(3, 4, 4))


@pytest.mark.parametrize("P", [100, 9000])
def test_apply_matrix_batch_rounds_as_a_loop(P: int) -> None:
    # a batch of renders and a loop over them must agree: the path is chosen per item
    from diffrend.transforms.transform3d import apply_matrix

    g = torch.Generator().manual_seed(P)
    points = torch.randn(12, P, 3, generator=g)
    matrix = torch.randn(12, 4, 4, generator=g)
    looped = torch.cat([apply_matrix(points[i:i + 1], matrix[i:i + 1]) for i in range(12)])
    assert torch.equal(apply_matrix(points, matrix), looped)
