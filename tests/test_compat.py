"""diffrend.compat: the opt-in ``pytorch3d`` alias and the conformance harness's pieces."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import diffrend
import diffrend.compat as compat
from diffrend.compat.conformance.classify import classify, failure_class
from diffrend.compat.conformance.plugin import cuda_to_cpu_source


@pytest.fixture
def installed():
    compat.install_pytorch3d()
    yield
    compat.uninstall_pytorch3d()


def test_import_diffrend_does_not_register_pytorch3d():
    code = "import sys, diffrend; print('pytorch3d' in sys.modules or "
    code += "any(type(f).__name__ == '_AliasFinder' for f in sys.meta_path))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_alias_gives_the_same_objects(installed):
    import pytorch3d
    from pytorch3d.renderer import MeshRasterizer
    from pytorch3d.renderer.mesh.rasterizer import RasterizationSettings
    from pytorch3d.structures import Meshes

    assert compat.pytorch3d_installed()
    # PyTorch3D's calling convention (rasterizer(meshes, **renderer_kwargs)) on diffrend's
    assert issubclass(MeshRasterizer, diffrend.MeshRasterizer)
    assert RasterizationSettings is diffrend.RasterizationSettings
    assert Meshes is diffrend.Meshes
    assert pytorch3d.__version__ == "0.7.9"
    # The same module object under both names: no second copy of any class.
    import diffrend.compat.pytorch3d.structures as real

    assert sys.modules["pytorch3d.structures"] is real


def test_install_twice_is_a_no_op(installed):
    compat.install_pytorch3d()
    finders = [f for f in sys.meta_path if type(f).__name__ == "_AliasFinder"]
    assert len(finders) == 1


def test_missing_submodule_is_a_plain_import_error(installed):
    with pytest.raises(ModuleNotFoundError):
        import pytorch3d.implicitron  # noqa: F401


def test_compiled_internals_say_what_to_use(installed):
    from pytorch3d import _C  # importable, so files that import it load

    with pytest.raises(AttributeError, match="public function"):
        _C.rasterize_meshes  # noqa: B018


def test_uninstall_removes_the_alias():
    compat.install_pytorch3d()
    import pytorch3d.structures  # noqa: F401

    compat.uninstall_pytorch3d()
    assert not compat.pytorch3d_installed()
    assert not any(n == "pytorch3d" or n.startswith("pytorch3d.") for n in sys.modules)


def test_refuses_to_shadow_a_real_pytorch3d(tmp_path):
    fake = tmp_path / "pytorch3d"
    fake.mkdir()
    (fake / "__init__.py").write_text("REAL = True\n")
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import diffrend.compat as c
        try:
            c.install_pytorch3d()
        except RuntimeError as e:
            print("refused", "force=True" in str(e))
        c.install_pytorch3d(force=True)
        import pytorch3d
        print(hasattr(pytorch3d, "REAL"), pytorch3d.__version__)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["refused True", "False 0.7.9"]


def test_cuda_rewrite_changes_only_device_tokens():
    src = textwrap.dedent(
        """
        device = torch.device("cuda:0")
        x = y.cuda()
        torch.cuda.synchronize()
        name = "cuda kernels"
        z = torch.zeros(3, device='cuda')
        """
    )
    out = cuda_to_cpu_source(src)
    assert 'torch.device("cpu")' in out
    assert "x = y.cpu()" in out
    assert "torch.cuda.synchronize()" in out
    assert '"cuda kernels"' in out
    assert 'device="cpu"' in out


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("ImportError: cannot import name 'FishEyeCameras' from 'pytorch3d.renderer'",
         "missing name"),
        ("AttributeError: 'Meshes' object has no attribute 'submeshes'", "missing name"),
        ("TypeError: save_obj() got an unexpected keyword argument 'decimal_places'",
         "signature"),
        ("AssertionError: Tensor-likes are not close!", "numeric"),
        ("AssertionError: False is not true", "behaviour"),
        ("ValueError: shininess must be >= 0", "behaviour"),
    ],
)
def test_failure_classes(message, cls):
    assert failure_class(message) == cls


def test_not_applicable_reasons():
    rec = {"nodeid": "t", "outcome": "collect_error",
           "message": "ModuleNotFoundError: No module named 'pytorch3d._C'"}
    assert classify(rec).cls == "n/a: pytorch3d._C internals"
    assert classify({"nodeid": "t", "outcome": "passed"}).cls == "passed"
    skipped = {"nodeid": "t", "outcome": "skipped", "message": "needs multiple GPUs"}
    assert classify(skipped).cls == "n/a: multi-GPU"
    rng = {"nodeid": "tests/test_render_meshes.py::TestRenderMeshes::test_join_uvs_opengl",
           "outcome": "failed", "message": "AssertionError: Not close."}
    assert classify(rng).cls == "n/a: reference drawn from CUDA random numbers"
    simple = dict(rng, nodeid="tests/test_render_meshes.py::TestRenderMeshes::test_join_uvs_simple")
    assert classify(simple).cls == "numeric"  # only the listed tests, not their prefixes


def _sphere_scene(camera_type):
    from diffrend import look_at_view_transform

    R, T = look_at_view_transform(2.7, 10.0, 20.0)
    return diffrend.ico_sphere(3), camera_type(R=R, T=T)


def test_opengl_stand_in_matches_the_hard_rasterizer(installed):
    import torch
    from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
    from pytorch3d.renderer.opengl import MeshRasterizerOpenGL

    mesh, cams = _sphere_scene(diffrend.FoVPerspectiveCameras)
    settings = RasterizationSettings(image_size=96, perspective_correct=True)
    gl = MeshRasterizerOpenGL(cams, settings)(mesh)
    ref = MeshRasterizer(cams, settings)(mesh)
    assert gl.dists is None and not gl.zbuf.requires_grad
    assert gl.pix_to_face.shape == (1, 96, 96, 1) and gl.zbuf.dtype == torch.float32
    covered = gl.pix_to_face >= 0
    assert covered.sum() > 2000
    # sub-pixel snapping moves a few silhouette pixels only; inside, the same faces
    assert (gl.pix_to_face != ref.pix_to_face).float().mean() < 0.01
    same = covered & (gl.pix_to_face == ref.pix_to_face)
    # snapping moves vertices by up to 1/512 pixel: depths at grazing faces move a little
    torch.testing.assert_close(gl.zbuf[same], ref.zbuf[same], atol=5e-3, rtol=0)
    # no pixel inside the silhouette falls through to a back face (the fill rule)
    inner = torch.nn.functional.avg_pool2d(covered[..., 0].float()[:, None], 3, 1, 1)[:, 0]
    inside = inner == 1.0
    assert (gl.zbuf[..., 0][inside] < 2.7).all()


def test_opengl_stand_in_keeps_pytorch3d_rules(installed):
    from pytorch3d.renderer import PerspectiveCameras, RasterizationSettings
    from pytorch3d.renderer.opengl import MeshRasterizerOpenGL

    mesh, cams = _sphere_scene(diffrend.FoVPerspectiveCameras)
    with pytest.raises(ValueError, match="only works with FoVPerspectiveCameras"):
        MeshRasterizerOpenGL(PerspectiveCameras())(mesh)
    with pytest.raises(ValueError, match="Cameras must be specified"):
        MeshRasterizerOpenGL()(mesh)
    with pytest.raises(ValueError, match="Max rasterization size"):
        MeshRasterizerOpenGL(cams, RasterizationSettings(image_size=(4096, 16)))
    with pytest.warns(UserWarning, match="one face per pixel"):
        MeshRasterizerOpenGL(cams, RasterizationSettings(image_size=16, faces_per_pixel=4))
    # beyond zfar: nothing, as OpenGL's far-plane clipping
    far = diffrend.FoVPerspectiveCameras(R=cams.R, T=cams.T, zfar=1.5)  # sphere: 1.7-3.7
    frags = MeshRasterizerOpenGL(far, RasterizationSettings(image_size=32))(mesh)
    assert (frags.pix_to_face == -1).all()


def test_rasterizers_take_pytorch3d_keywords(installed):
    from pytorch3d.renderer import MeshRasterizer, PointsRasterizer, RasterizationSettings

    mesh, cams = _sphere_scene(diffrend.FoVPerspectiveCameras)
    rast = MeshRasterizer(raster_settings=RasterizationSettings(image_size=16))
    frags = rast(mesh, cameras=cams, lights=object(), materials=None)  # others ignored
    assert (frags.pix_to_face >= 0).any()
    clouds = diffrend.Pointclouds([mesh.verts_packed()])
    settings = diffrend.PointsRasterizationSettings(image_size=16, radius=0.05)
    pf = PointsRasterizer(cams, settings)(clouds, lights=None)
    assert pf.idx.dtype.is_signed and (pf.idx >= 0).any()


def test_ray_bundles(installed):
    import torch
    from pytorch3d.renderer import HeterogeneousRayBundle, RayBundle, ray_bundle_to_ray_points

    b = RayBundle(origins=torch.zeros(2, 4, 3), directions=torch.ones(2, 4, 3) * 2,
                  lengths=torch.tensor([0.0, 1.0, 3.0]).expand(2, 4, 3), xys=torch.zeros(2, 4, 2))
    pts = ray_bundle_to_ray_points(b)
    assert pts.shape == (2, 4, 3, 3)
    assert torch.equal(pts[1, 2, 2], torch.tensor([6.0, 6.0, 6.0]))
    h = HeterogeneousRayBundle(b.origins[0], b.directions[0], b.lengths[0], b.xys[0],
                               camera_ids=torch.tensor([0]), camera_counts=torch.tensor([4]))
    assert ray_bundle_to_ray_points(h).shape == (4, 3, 3)
    with pytest.raises(ValueError, match="leading dimensions"):
        ray_bundle_to_ray_points(b._replace(lengths=torch.zeros(3, 3)))


def test_device_artifacts_are_not_applicable():
    two = {"nodeid": "tests/test_meshes.py::TestMeshes::test_to", "outcome": "failed",
           "message": "AssertionError: unexpectedly identical"}
    assert classify(two).cls == "n/a: needs a second device"
    cuda = {"nodeid": "tests/test_x.py::T::t", "outcome": "failed",
            "message": "TypeError: type torch.cuda.FloatTensor not available. Torch not "
                       "compiled with CUDA enabled."}
    assert classify(cuda).cls == "n/a: needs CUDA"
    other = dict(two, nodeid="tests/test_meshes.py::TestMeshes::test_simple")
    assert classify(other).cls == "behaviour"


def test_per_call_extrinsics_stay_on_the_cameras_in_compat_only(installed):
    import torch
    from pytorch3d.renderer import (
        AlphaCompositor,
        MeshRasterizer,
        MeshRenderer,
        PointsRasterizer,
        PointsRenderer,
        RasterizationSettings,
        SoftSilhouetteShader,
        look_at_view_transform,
    )

    mesh, _ = _sphere_scene(diffrend.FoVPerspectiveCameras)
    R, T = look_at_view_transform(5.0, 30.0, 40.0)
    settings = RasterizationSettings(image_size=16)
    for call in (
        lambda c: MeshRasterizer(c, settings)(mesh, R=R, T=T),
        lambda c: PointsRasterizer(c, diffrend.PointsRasterizationSettings(image_size=16))(
            diffrend.Pointclouds([mesh.verts_packed()]), R=R, T=T),
        lambda c: MeshRenderer(MeshRasterizer(c, settings), SoftSilhouetteShader())(
            mesh, R=R, T=T),
        lambda c: PointsRenderer(
            PointsRasterizer(c, diffrend.PointsRasterizationSettings(image_size=16)),
            AlphaCompositor(),
        )(diffrend.Pointclouds([mesh.verts_packed()], features=[mesh.verts_packed()]),
          R=R, T=T),
    ):
        cams = diffrend.FoVPerspectiveCameras()
        call(cams)
        assert torch.equal(cams.R, R) and torch.equal(cams.T, T)  # as PyTorch3D
    # diffrend's own classes apply them to the call only
    cams = diffrend.FoVPerspectiveCameras()
    diffrend.MeshRasterizer(cams, settings)(mesh, R=R, T=T)
    assert torch.equal(cams.T, torch.zeros(1, 3))


def test_lights_and_materials_follow_tensor_properties_in_compat_only(installed):
    import torch
    from pytorch3d.renderer import DirectionalLights, Materials, PointLights

    # a 1-D value sets the batch size; each element holds the vector
    light = DirectionalLights(diffuse_color=torch.ones(3), direction=torch.tensor([0.0, 0, 1]))
    assert len(light) == 3
    out = light.diffuse(normals=torch.tensor([[[0.0, 0, 1]]]))
    assert out.shape == (3, 1, 3) and torch.allclose(out, torch.ones(3, 1, 3))
    assert len(diffrend.DirectionalLights(diffuse_color=torch.ones(3))) == 1  # diffrend: 1 RGB
    # lights[i].attr = v writes row i back; lights[i].attr reads it without a batch dim
    p = PointLights(ambient_color=((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
    p[1].ambient_color = (0.5, 0.5, 0.5)
    assert torch.equal(p.ambient_color[1], torch.full((3,), 0.5))
    assert torch.equal(p[0].ambient_color, torch.zeros(3))
    assert isinstance(p[0:1], PointLights) and len(p[0:1]) == 1
    with pytest.raises(IndexError):
        p[2]
    # a negative shininess is accepted there, refused by diffrend's own class
    assert float(Materials(shininess=-1.0).shininess) == -1.0
    with pytest.raises(ValueError, match="shininess"):
        diffrend.Materials(shininess=-1.0)
