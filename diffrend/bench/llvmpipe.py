"""OpenGL software-rasterizer baseline: Mesa's llvmpipe through a headless EGL context.

:class:`LlvmpipeRasterizer` draws the same thing diffrend's rasterizer computes for
``faces_per_pixel=1`` (nearest face id, its view-space depth and its perspective-correct
barycentrics per pixel) with OpenGL, into float32 render targets with a depth buffer, and
reads them back. It is the yardstick of ``diffrend bench``; :func:`time_llvmpipe` times it.

Input vertices are already projected the way diffrend's rasterizer sees them: ``x, y`` in
PyTorch3D NDC (+X left, +Y up, pixel (0, 0) at the top-left; for non-square images the
shorter side spans [-1, 1]) and ``z`` the view-space depth (positive in front of the camera).
The vertex shader turns them back into clip coordinates with ``w = z``, so GL's coverage and
perspective-correct interpolation are PyTorch3D's: ``x_clip = -x * z * S / W`` and
``y_clip = -y * z * S / H`` with ``S = min(H, W)``. The X flip takes +X-left NDC to GL's
+X-right; the Y flip makes GL's window row 0 (the first row ``glReadPixels`` returns) the top
of the image, so the read-back arrays need no flip. Depth uses a standard perspective
mapping with near/far planes taken from the data, so the depth test keeps the nearest face.

Geometry is drawn unindexed (``F * 3`` vertices, one copy per face corner): each corner gets
its own barycentric basis vector from ``gl_VertexID % 3`` whatever the provoking vertex, and
``gl_PrimitiveID`` is the face index.

Run ``python -m diffrend.bench.llvmpipe`` for a self-check on the cow.

Setup (Debian/Ubuntu): ``apt-get install -y libegl1 libgl1-mesa-dri`` and
``pip install moderngl``. ``LP_NUM_THREADS`` (read when Mesa loads) sets llvmpipe's
rasterizer threads; by default it uses one per CPU core.
"""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Any

import numpy as np

_INSTALL_HINT = (
    "the llvmpipe baseline needs moderngl and Mesa's EGL/llvmpipe: "
    "`pip install moderngl` and `apt-get install -y libegl1 libgl1-mesa-dri`"
)

_VERTEX_SHADER = """
#version 330
in vec3 in_pos;          // (x_ndc, y_ndc, z_view)
uniform vec2 u_scale;    // (-S / W, -S / H): PyTorch3D NDC -> GL NDC, with the axis flips
uniform vec2 u_depth;    // (a, b): z_clip = a * z + b, so z_clip / z = a + b / z
out vec3 v_bary;
out float v_z;
void main() {
    int k = gl_VertexID % 3;
    v_bary = vec3(k == 0, k == 1, k == 2);
    float z = in_pos.z;
    v_z = z;
    gl_Position = vec4(in_pos.xy * u_scale * z, u_depth.x * z + u_depth.y, z);
}
"""

_FRAGMENT_SHADER = """
#version 330
in vec3 v_bary;
in float v_z;
layout(location = 0) out float out_face;
layout(location = 1) out float out_z;
layout(location = 2) out vec4 out_bary;  // alpha unused: RGB32F is not color-renderable
void main() {
    out_face = float(gl_PrimitiveID);  // exact in float32 up to 2^24 faces
    out_z = v_z;
    out_bary = vec4(v_bary, 0.0);
}
"""


_MAX_FACES = 2**24  # face ids are stored in a float32 target: exact up to 2^24


def _depth_mapping(z: np.ndarray) -> tuple[float, float]:
    """Coefficients ``(a, b)`` of ``z_clip = a * z + b`` for near/far planes around ``z``.

    Args:
        z: (V,) view-space depths of the vertices.

    Returns:
        ``(a, b)`` such that ``z_clip / z`` goes from -1 at the near plane to +1 at the far
        plane, with near just below the smallest positive depth and far just above the
        largest. Geometry at ``z <= 0`` is clipped by GL as behind the camera.
    """
    zpos = z[np.isfinite(z) & (z > 0)]
    if zpos.size == 0:
        near, far = 1.0, 2.0  # nothing in front of the camera: any valid planes
    else:
        near = max(0.5 * float(zpos.min()), 1e-6)
        far = 2.0 * float(zpos.max())
    a = (far + near) / (far - near)
    b = -2.0 * far * near / (far - near)
    return a, b


class LlvmpipeRasterizer:
    """Renders one mesh (already in diffrend's NDC space) with OpenGL on Mesa's llvmpipe.

    The geometry is uploaded once at construction; :meth:`render` draws one frame.

    Args:
        verts_ndc: (V, 3) float32 vertices: ``x, y`` in PyTorch3D NDC, ``z`` view-space depth.
        faces: (F, 3) integer vertex indices per face.
        height: image height H in pixels.
        width: image width W in pixels.

    Raises:
        RuntimeError: if moderngl or a headless EGL context is unavailable.
        ValueError: on badly shaped inputs or indices out of range.
    """

    def __init__(self, verts_ndc: np.ndarray, faces: np.ndarray, height: int, width: int):
        verts = np.asarray(verts_ndc, dtype=np.float32)
        faces = np.asarray(faces)
        if verts.ndim != 2 or verts.shape[1] != 3:
            raise ValueError(f"verts_ndc must be (V, 3), got {verts.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {faces.shape}")
        if faces.size and (faces.min() < 0 or faces.max() >= len(verts)):
            raise ValueError("faces index vertices out of range")
        if height <= 0 or width <= 0:
            raise ValueError(f"image size must be positive, got {height}x{width}")
        if len(faces) > _MAX_FACES:
            raise ValueError(f"at most {_MAX_FACES} faces (float32 face ids), got {len(faces)}")
        self.height = int(height)
        self.width = int(width)
        self.num_faces = int(len(faces))

        try:
            import moderngl
        except ImportError as e:
            raise RuntimeError(f"moderngl is not installed; {_INSTALL_HINT}") from e
        _load_triton_first()
        try:
            self.ctx: Any = moderngl.create_standalone_context(backend="egl")
        except Exception as e:  # moderngl raises plain Exception when EGL is missing
            raise RuntimeError(
                f"could not create a headless EGL OpenGL context ({e}); {_INSTALL_HINT}"
            ) from e
        ctx = self.ctx
        self.renderer = str(ctx.info.get("GL_RENDERER", "?"))
        if "llvmpipe" not in self.renderer:  # e.g. a GPU's EGL vendor library was picked
            warnings.warn(
                f"EGL context renderer is {self.renderer!r}, not Mesa's llvmpipe",
                stacklevel=2,
            )

        # One vertex copy per face corner: (F * 3, 3).
        corners = np.ascontiguousarray(verts[faces.reshape(-1).astype(np.int64)])
        s = float(min(self.height, self.width))
        a, b = _depth_mapping(verts[:, 2])

        self.prog = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self.prog["u_scale"].value = (-s / self.width, -s / self.height)
        self.prog["u_depth"].value = (a, b)
        self.vbo = ctx.buffer(corners.tobytes())
        self.vao = ctx.vertex_array(self.prog, [(self.vbo, "3f", "in_pos")])

        size = (self.width, self.height)
        self.tex_face = ctx.texture(size, 1, dtype="f4")
        self.tex_z = ctx.texture(size, 1, dtype="f4")
        self.tex_bary = ctx.texture(size, 4, dtype="f4")
        self.depth = ctx.depth_renderbuffer(size)
        self.fbo = ctx.framebuffer([self.tex_face, self.tex_z, self.tex_bary], self.depth)
        self._face_buf = np.empty((self.height, self.width), np.float32)  # reused each frame

    def render(self, readback: bool = True) -> dict[str, np.ndarray]:
        """Draw one frame: clear, draw, finish and (by default) read every target back.

        Args:
            readback: if False, stop after ``glFinish`` and return an empty dict.

        Returns:
            ``pix_to_face``: (H, W) int64 face index, -1 for background;
            ``zbuf``: (H, W) float32 view-space depth, -1 for background;
            ``bary``: (H, W, 3) float32 perspective-correct barycentrics, -1 for background.
            Row 0 is the top of the image, column 0 its left (PyTorch3D's pixel order).
        """
        ctx = self.ctx
        if ctx is None:
            raise RuntimeError("render() after release()")
        self.fbo.use()
        ctx.enable_only(ctx.DEPTH_TEST)
        ctx.depth_func = "<"
        self.fbo.clear(-1.0, -1.0, -1.0, -1.0, depth=1.0)
        if self.num_faces:
            self.vao.render(mode=ctx.TRIANGLES, vertices=3 * self.num_faces)
        ctx.finish()
        if not readback:
            return {}
        h, w = self.height, self.width
        zbuf = np.empty((h, w), np.float32)
        bary = np.empty((h, w, 3), np.float32)
        self.fbo.read_into(self._face_buf, components=1, attachment=0, dtype="f4")
        self.fbo.read_into(zbuf, components=1, attachment=1, dtype="f4")
        # GL_RGB read of the RGBA target: contiguous (H, W, 3) without a strided numpy copy.
        self.fbo.read_into(bary, components=3, attachment=2, dtype="f4")
        return {"pix_to_face": self._face_buf.astype(np.int64), "zbuf": zbuf, "bary": bary}

    def release(self) -> None:
        """Free the GL objects and the context (the object is unusable afterwards)."""
        ctx = getattr(self, "ctx", None)
        if ctx is None:
            return
        for name in ("fbo", "depth", "tex_bary", "tex_z", "tex_face", "vao", "vbo", "prog"):
            obj = getattr(self, name, None)
            if obj is not None:
                obj.release()
        ctx.release()
        self.ctx = None

    def __enter__(self) -> LlvmpipeRasterizer:
        """Use as a context manager: the GL context is released on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Release the GL objects and the context."""
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # interpreter shutdown: the GL library may already be gone
            pass


def _load_triton_first() -> None:
    """Import triton (when installed) before Mesa loads llvmpipe's LLVM.

    Mesa's libLLVM and triton's libtriton (its own LLVM) cannot be loaded in that order:
    once an EGL context has loaded llvmpipe, even after it is released, a first
    ``import triton`` crashes the process (SIGSEGV while loading libtriton). Torch imports
    triton lazily (e.g. ``torch.optim`` pulls in ``torch._dynamo``), so a later fit in the
    same process would crash; loading triton first avoids it.
    """
    import importlib.util

    if importlib.util.find_spec("triton") is None:
        return
    try:
        import triton  # noqa: F401
    except Exception:  # a broken triton install is torch's concern, not the benchmark's
        pass


def time_llvmpipe(
    verts_ndc: np.ndarray,
    faces: np.ndarray,
    height: int,
    width: int,
    repeats: int = 10,
    warmup: int = 2,
) -> list[float]:
    """Seconds per frame of :meth:`LlvmpipeRasterizer.render` (read-back included).

    Context creation and geometry upload are not timed; ``warmup`` frames are drawn first.

    Args:
        verts_ndc: (V, 3) float32 vertices in diffrend's NDC space (``z`` = view depth).
        faces: (F, 3) integer vertex indices.
        height: image height H.
        width: image width W.
        repeats: number of timed frames.
        warmup: untimed frames drawn before timing (shader compilation, first touch).

    Returns:
        ``repeats`` wall-clock durations in seconds, one per frame.
    """
    with LlvmpipeRasterizer(verts_ndc, faces, height, width) as gl:
        for _ in range(warmup):
            gl.render()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            gl.render()
            times.append(time.perf_counter() - t0)
    return times


def project_fov_perspective(
    verts_world: np.ndarray, dist: float = 2.7, fov_degrees: float = 60.0
) -> np.ndarray:
    """Project world vertices like PyTorch3D's default ``FoVPerspectiveCameras``.

    The camera is ``look_at_view_transform(dist=dist, elev=0, azim=0)``, i.e.
    ``R = diag(-1, 1, -1)``, ``T = (0, 0, dist)``, ``X_view = X_world @ R + T``.

    Args:
        verts_world: (V, 3) world-space vertices.
        dist: camera distance from the origin.
        fov_degrees: vertical field of view.

    Returns:
        (V, 3) float32: ``x, y`` in NDC (``s * x_view / z_view`` with ``s = 1/tan(fov/2)``)
        and ``z`` = view-space depth.
    """
    v = np.asarray(verts_world, dtype=np.float64)
    view = v @ np.diag([-1.0, 1.0, -1.0]) + np.array([0.0, 0.0, dist])
    s = 1.0 / np.tan(np.radians(fov_degrees) / 2.0)
    z = view[:, 2]
    return np.stack([s * view[:, 0] / z, s * view[:, 1] / z, z], axis=1).astype(np.float32)


def _load_cow() -> tuple[np.ndarray, np.ndarray]:
    """The cow mesh, centred and scaled so max |coord| = 1: (V, 3) float32, (F, 3) int64."""
    from pathlib import Path

    import trimesh

    path = Path(__file__).resolve().parents[1] / "data" / "cow_mesh" / "cow.obj"
    mesh = trimesh.load(str(path), process=False, force="mesh")
    verts = np.asarray(mesh.vertices, dtype=np.float64)
    verts = verts - verts.mean(axis=0)
    verts = verts / np.abs(verts).max()
    return verts.astype(np.float32), np.asarray(mesh.faces, dtype=np.int64)


def _exact_bary_depth(
    verts_ndc: np.ndarray, faces: np.ndarray, pix_to_face: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Float64 perspective-correct barycentrics (N, 3) and depth (N,) of the covering face
    at each covered pixel centre (N = number of pixels with ``pix_to_face >= 0``)."""
    height, width = pix_to_face.shape
    s = min(height, width)
    rows, cols = np.nonzero(pix_to_face >= 0)
    px = (width - 2.0 * cols - 1.0) / s
    py = (height - 2.0 * rows - 1.0) / s
    tri = verts_ndc[faces[pix_to_face[rows, cols]]].astype(np.float64)  # (N, 3 corners, 3)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    # Screen-space barycentrics (2D areas), then perspective correction with 1/z.
    w = np.stack(
        [
            (px - x[:, 1]) * (y[:, 2] - y[:, 1]) - (py - y[:, 1]) * (x[:, 2] - x[:, 1]),
            (px - x[:, 2]) * (y[:, 0] - y[:, 2]) - (py - y[:, 2]) * (x[:, 0] - x[:, 2]),
            (px - x[:, 0]) * (y[:, 1] - y[:, 0]) - (py - y[:, 0]) * (x[:, 1] - x[:, 0]),
        ],
        axis=1,
    )
    w = w / w.sum(axis=1, keepdims=True)
    w = w / z
    bary = w / w.sum(axis=1, keepdims=True)
    return bary, (bary * z).sum(axis=1)


def _main() -> None:
    verts, faces = _load_cow()
    ndc = project_fov_perspective(verts, dist=2.7)
    with LlvmpipeRasterizer(ndc, faces, 512, 512) as gl:
        print(f"renderer: {gl.renderer}; cow: {len(verts)} verts, {len(faces)} faces")
        out = gl.render()
    p2f, zbuf, bary = out["pix_to_face"], out["zbuf"], out["bary"]
    hit = p2f >= 0
    print(f"covered pixels: {hit.mean():.4f}; face ids in [{p2f[hit].min()}, {p2f[hit].max()}]")
    print(f"depth range of covered pixels: [{zbuf[hit].min():.4f}, {zbuf[hit].max():.4f}]")
    bsum = bary[hit].sum(axis=1)
    print(f"bary sums: [{bsum.min():.6f}, {bsum.max():.6f}]; min bary {bary[hit].min():.2e}")
    ref_bary, ref_z = _exact_bary_depth(ndc, faces, p2f)
    err_b, err_z = np.abs(bary[hit] - ref_bary), np.abs(zbuf[hit] - ref_z)
    print(
        f"vs exact float64 at pixel centres: bary max {err_b.max():.1e} (p99 "
        f"{np.percentile(err_b, 99):.1e}), depth max {err_z.max():.1e}"
    )
    assert 0.05 < hit.mean() < 0.9, "implausible silhouette"
    assert 1.7 <= zbuf[hit].min() and zbuf[hit].max() <= 3.7, "depth outside [1.7, 3.7]"
    assert np.all((zbuf == -1) == ~hit) and np.all((bary == -1).all(axis=-1) == ~hit)
    assert np.allclose(bsum, 1.0, atol=1e-3) and err_b.max() < 1e-3 and err_z.max() < 1e-4
    for size in (512,):
        times = time_llvmpipe(ndc, faces, size, size, repeats=20)
        ms = 1e3 * statistics.median(times)
        print(f"cow {size}x{size}: median {ms:.2f} ms per frame (incl. readback)")


if __name__ == "__main__":
    _main()
