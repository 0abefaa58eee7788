"""diffrend.io.gaussians: the 3DGS (Inria) PLY layout in and out."""

from __future__ import annotations

import math
import os
import stat

import numpy as np
import pytest
import torch

plyfile = pytest.importorskip("plyfile")

from diffrend.io import GaussianCloud, load_gaussian_ply, save_gaussian_ply  # noqa: E402

INRIA_ORDER = ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
TAIL = ("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")


def random_cloud(n: int, degree: int, seed: int = 0) -> GaussianCloud:
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return GaussianCloud(
        means=torch.randn(n, 3, generator=g) * 3,
        quats=torch.randn(n, 4, generator=g),
        scales=torch.rand(n, 3, generator=g) * 0.5 + 1e-3,
        opacities=torch.rand(n, generator=g) * 0.98 + 0.01,
        sh=torch.randn(n, k, 3, generator=g),
    )


def props(n_rest: int) -> list[str]:
    return [*INRIA_ORDER, *(f"f_rest_{i}" for i in range(n_rest)), *TAIL]


def write_ply(path, columns: dict[str, np.ndarray], text: bool = False, dtype: str = "f4",
              element: str = "vertex") -> None:
    """A PLY written with plyfile, properties in the order of ``columns``."""
    n = len(next(iter(columns.values())))
    rows = np.empty(n, dtype=[(name, dtype) for name in columns])
    for name, col in columns.items():
        rows[name] = col
    plyfile.PlyData([plyfile.PlyElement.describe(rows, element)], text=text).write(str(path))


def inria_columns(n: int, n_rest: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols = {name: rng.normal(size=n).astype(np.float32) for name in props(n_rest)}
    for name in ("nx", "ny", "nz"):
        cols[name] = np.zeros(n, np.float32)
    return cols


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_round_trip(tmp_path, degree):
    cloud = random_cloud(50, degree, seed=degree)
    path = tmp_path / "point_cloud.ply"
    save_gaussian_ply(path, cloud)
    back = load_gaussian_ply(path)
    assert back.sh_degree == degree == cloud.sh_degree
    assert back.sh.shape == (50, (degree + 1) ** 2, 3)
    for name in ("means", "quats", "scales", "opacities", "sh"):
        got, want = getattr(back, name), getattr(cloud, name)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=2e-6, atol=2e-6, msg=name)


def test_written_layout_is_inria(tmp_path):
    """Binary little-endian float32, the reference property order, channel-major f_rest."""
    cloud = random_cloud(7, 2)
    path = tmp_path / "g.ply"
    save_gaussian_ply(path, cloud)
    assert path.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    data = plyfile.PlyData.read(str(path))
    assert [el.name for el in data.elements] == ["vertex"]
    v = data["vertex"]
    assert [p.name for p in v.properties] == props(24)
    assert all(p.val_dtype in ("f4", "float32") for p in v.properties)
    sh = cloud.sh.numpy()
    # f_rest_{c * (K - 1) + j} is coefficient j + 1 of channel c
    for c in range(3):
        for j in range(8):
            np.testing.assert_allclose(v[f"f_rest_{c * 8 + j}"], sh[:, j + 1, c], rtol=1e-6)
    np.testing.assert_allclose(v["f_dc_1"], sh[:, 0, 1], rtol=1e-6)
    np.testing.assert_allclose(v["opacity"], torch.logit(cloud.opacities.double()).numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v["scale_2"], np.log(cloud.scales[:, 2].numpy()), rtol=1e-5)
    np.testing.assert_allclose(v["rot_0"], cloud.quats[:, 0].numpy())
    for name in ("nx", "ny", "nz"):
        assert np.all(v[name] == 0)


def test_file_mode_and_no_temp_left(tmp_path):
    path = tmp_path / "sub" / "g.ply"
    save_gaussian_ply(path, random_cloud(3, 0))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in path.parent.iterdir()) == ["g.ply"]


@pytest.mark.parametrize("text", [False, True])
def test_hand_written_inria_file(tmp_path, text):
    """A file as the reference trainer writes it: activations checked numerically."""
    n, n_rest = 5, 45
    cols = inria_columns(n, n_rest)
    cols["opacity"] = np.array([-2.0, 0.0, 1.5, 8.0, -30.0], np.float32)
    cols["scale_1"] = np.array([-4.0, 0.0, 1.0, -0.5, 2.0], np.float32)
    path = tmp_path / "inria.ply"
    write_ply(path, cols, text=text)
    cloud = load_gaussian_ply(path)
    assert cloud.sh_degree == 3 and len(cloud) == n
    want_opacity = [1 / (1 + math.exp(2.0)), 0.5, 1 / (1 + math.exp(-1.5)),
                    1 / (1 + math.exp(-8.0)), 1 / (1 + math.exp(30.0))]
    np.testing.assert_allclose(cloud.opacities.numpy(), want_opacity, rtol=1e-6)
    np.testing.assert_allclose(cloud.scales[:, 1].numpy(),
                               [math.exp(-4.0), 1.0, math.e, math.exp(-0.5), math.exp(2.0)],
                               rtol=1e-6)
    np.testing.assert_allclose(cloud.scales[:, 0].numpy(), np.exp(cols["scale_0"]), rtol=1e-6)
    np.testing.assert_array_equal(cloud.means.numpy(),
                                  np.stack([cols["x"], cols["y"], cols["z"]], 1))
    np.testing.assert_array_equal(cloud.quats.numpy(),
                                  np.stack([cols[f"rot_{i}"] for i in range(4)], 1))
    np.testing.assert_array_equal(cloud.sh[:, 0].numpy(),
                                  np.stack([cols[f"f_dc_{i}"] for i in range(3)], 1))
    # degree 3: 15 rest coefficients per channel, R's first, then G's, then B's
    np.testing.assert_array_equal(cloud.sh[:, 4, 1].numpy(), cols["f_rest_18"])  # G, coeff 4
    np.testing.assert_array_equal(cloud.sh[:, 15, 2].numpy(), cols["f_rest_44"])  # B, last
    np.testing.assert_array_equal(cloud.sh[:, 1, 0].numpy(), cols["f_rest_0"])


def test_property_order_and_double_and_no_normals(tmp_path):
    """Properties are found by name: any order, float64, normals optional."""
    cols = inria_columns(4, 9)
    for name in ("nx", "ny", "nz"):
        del cols[name]
    shuffled = dict(reversed(list(cols.items())))
    path = tmp_path / "odd.ply"
    write_ply(path, shuffled, dtype="f8")
    cloud = load_gaussian_ply(path)
    assert cloud.sh_degree == 1
    np.testing.assert_allclose(cloud.sh[:, 3, 2].numpy(), cols["f_rest_8"], rtol=1e-7)
    np.testing.assert_allclose(cloud.sh[:, 2, 0].numpy(), cols["f_rest_1"], rtol=1e-7)


def test_empty_cloud_round_trip(tmp_path):
    cloud = random_cloud(0, 1)
    save_gaussian_ply(tmp_path / "e.ply", cloud)
    back = load_gaussian_ply(tmp_path / "e.ply")
    assert back.means.shape == (0, 3) and back.sh.shape == (0, 4, 3)


def test_extreme_opacities_and_zero_scales_are_finite(tmp_path):
    cloud = random_cloud(3, 0)
    cloud = GaussianCloud(cloud.means, cloud.quats, torch.tensor([[0.0, 1.0, 2.0]] * 3),
                          torch.tensor([0.0, 1.0, 0.5]), cloud.sh)
    save_gaussian_ply(tmp_path / "x.ply", cloud)
    v = plyfile.PlyData.read(str(tmp_path / "x.ply"))["vertex"]
    assert np.isfinite(v["opacity"]).all() and np.isfinite(v["scale_0"]).all()
    back = load_gaussian_ply(tmp_path / "x.ply")
    np.testing.assert_allclose(back.opacities.numpy(), [0.0, 1.0, 0.5], atol=1e-6)
    assert (back.scales[:, 0] < 1e-30).all() and (back.scales[:, 0] >= 0).all()


# ----------------------------------------------------------------------------- bad files


def test_not_a_ply(tmp_path):
    path = tmp_path / "bad.ply"
    path.write_bytes(b"solid cube\nfacet normal 0 0 1\n")
    with pytest.raises(ValueError, match="not a readable PLY"):
        load_gaussian_ply(path)


def test_truncated_binary(tmp_path):
    path = tmp_path / "t.ply"
    save_gaussian_ply(path, random_cloud(10, 1))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="not a readable PLY"):
        load_gaussian_ply(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_gaussian_ply(tmp_path / "nope.ply")


def test_no_vertex_element(tmp_path):
    path = tmp_path / "nv.ply"
    write_ply(path, inria_columns(3, 0), element="gaussian")
    with pytest.raises(ValueError, match="no 'vertex' element"):
        load_gaussian_ply(path)


@pytest.mark.parametrize("drop", [("opacity",), ("scale_2", "rot_0"), ("f_dc_1",), ("x",)])
def test_missing_properties_are_named(tmp_path, drop):
    cols = inria_columns(3, 9)
    for name in drop:
        del cols[name]
    path = tmp_path / "m.ply"
    write_ply(path, cols)
    with pytest.raises(ValueError, match="missing: " + ", ".join(drop)):
        load_gaussian_ply(path)


@pytest.mark.parametrize("n_rest", [1, 3, 8, 10, 30, 48])
def test_bad_f_rest_count(tmp_path, n_rest):
    path = tmp_path / "r.ply"
    write_ply(path, inria_columns(3, n_rest))
    with pytest.raises(ValueError, match=f"{n_rest} f_rest_"):
        load_gaussian_ply(path)


def test_f_rest_gap(tmp_path):
    cols = inria_columns(3, 10)
    del cols["f_rest_4"]  # 9 properties, but numbered 0-3, 5-9
    path = tmp_path / "gap.ply"
    write_ply(path, cols)
    with pytest.raises(ValueError, match="numbered 0..M-1"):
        load_gaussian_ply(path)


@pytest.mark.parametrize("name,value", [("y", np.nan), ("f_rest_5", np.inf),
                                        ("opacity", -np.inf), ("rot_3", np.nan)])
def test_non_finite_values_are_named(tmp_path, name, value):
    cols = inria_columns(4, 9)
    cols[name][2] = value
    path = tmp_path / "nan.ply"
    write_ply(path, cols)
    with pytest.raises(ValueError, match=f"property {name}: 1 NaN/inf value.*row 2"):
        load_gaussian_ply(path)


def test_scale_overflow_is_named(tmp_path):
    cols = inria_columns(4, 0)
    cols["scale_1"][1] = 200.0  # exp(200) is finite in float64, not in float32
    path = tmp_path / "big.ply"
    write_ply(path, cols)
    with pytest.raises(ValueError, match="scale_1 .exp overflows float32"):
        load_gaussian_ply(path)


def test_list_property(tmp_path):
    names = [name if name != "opacity" else "list uchar float opacity" for name in props(0)]
    header = "ply\nformat ascii 1.0\nelement vertex 1\n" + "".join(
        f"property {n}\n" if n.startswith("list") else f"property float {n}\n" for n in names)
    values = ["1 0.5" if n.startswith("list") else "0" for n in names]
    path = tmp_path / "list.ply"
    path.write_text(header + "end_header\n" + " ".join(values) + "\n")
    with pytest.raises(ValueError, match="opacity is a list"):
        load_gaussian_ply(path)


# ----------------------------------------------------------------------------- bad clouds


@pytest.mark.parametrize("field,value,match", [
    ("means", torch.zeros(4, 3), r"quats: expected shape \(4, 4\)"),
    ("quats", torch.zeros(5, 3), r"quats: expected shape \(5, 4\)"),
    ("scales", torch.zeros(5), r"scales: expected shape \(5, 3\)"),
    ("opacities", torch.zeros(5, 1), r"opacities: expected shape \(5,\)"),
    ("sh", torch.zeros(5, 5, 3), "sh: expected shape"),
    ("sh", torch.zeros(5, 4, 1), "sh: expected shape"),
    ("means", torch.zeros(5), r"means: expected shape \(N, 3\)"),
    ("sh", np.zeros((5, 1, 3)), "sh: expected a tensor"),
])
def test_cloud_shapes_are_checked(field, value, match):
    fields = {name: getattr(random_cloud(5, 1), name)
              for name in ("means", "quats", "scales", "opacities", "sh")}
    fields[field] = value
    with pytest.raises(ValueError, match=match):
        GaussianCloud(**fields)


@pytest.mark.parametrize("field,row,value,match", [
    ("scales", 3, -0.1, "cloud.scales: 1 value.* negative.*row 3"),
    ("opacities", 1, 1.5, r"cloud.opacities: 1 value.* outside \[0, 1\].*row 1"),
    ("opacities", 0, -1e-3, "cloud.opacities"),
    ("means", 2, float("nan"), "cloud.means: 1 NaN/inf.*row 2"),
    ("sh", 4, float("inf"), "cloud.sh: .*NaN/inf.*row 4"),
    ("quats", 0, float("nan"), "cloud.quats"),
])
def test_save_checks_values(tmp_path, field, row, value, match):
    cloud = random_cloud(5, 1)
    t = getattr(cloud, field)
    t.view(t.shape[0], -1)[row, 0] = value  # one bad value
    path = tmp_path / "bad.ply"
    with pytest.raises(ValueError, match=match):
        save_gaussian_ply(path, cloud)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left


def test_save_rejects_other_objects(tmp_path):
    with pytest.raises(ValueError, match="cloud: expected a GaussianCloud"):
        save_gaussian_ply(tmp_path / "x.ply", {"means": torch.zeros(1, 3)})


def test_save_detaches_and_keeps_input(tmp_path):
    cloud = random_cloud(6, 2)
    leaf = cloud.means.clone().requires_grad_(True)
    c2 = GaussianCloud(leaf, cloud.quats, cloud.scales, cloud.opacities, cloud.sh.double())
    save_gaussian_ply(tmp_path / "g.ply", c2)
    back = load_gaussian_ply(tmp_path / "g.ply")
    torch.testing.assert_close(back.means, cloud.means)
    assert c2.sh.dtype == torch.float64 and leaf.requires_grad
