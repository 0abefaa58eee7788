# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Gaussians and spheres
#
# Triangles and disks are not the only primitives a differentiable rasterizer can draw. 3D
# Gaussian splatting (Kerbl et al. 2023, gsplat) draws soft ellipsoids, and Pulsar
# (PyTorch3D's `PulsarPointsRenderer`) draws spheres blended by depth. This notebook builds
# one Gaussian by hand, projects it (EWA splatting), composites Gaussians front to back and
# checks where their gradients live, gives one a view-dependent colour with spherical
# harmonics, fits a few thousand of them to views of the cow, and ends with Pulsar's depth
# blending. It runs in about 30 seconds on two CPU cores.

# %%
import os

SMALL = os.environ.get("DIFFREND_LAB_SMALL") == "1"    # CI's test sizes (seconds, not minutes)
STATIC = os.environ.get("DIFFREND_LAB_STATIC") == "1"  # no widgets: the docs site and CI
# Idle OpenMP threads wait passively, so torch's and Numba's thread pools do not spin on
# each other's cores (see notebook 5).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import diffrend as dr  # noqa: E402
from diffrend.cameras import viewmats_and_intrinsics  # noqa: E402
from diffrend.cli.splat_job import initial_points, prepare_splat_inputs, render_result  # noqa: E402
from diffrend.jobs.metrics import psnr  # noqa: E402
from diffrend.jobs.splat import (  # noqa: E402
    FitSplatSettings,
    fit_splat,
    initial_gaussians,
    render_gaussians,
)
from diffrend.modules import PulsarPointsRenderer  # noqa: E402
from diffrend.splat import project_gaussians, rasterization, spherical_harmonics  # noqa: E402

torch.manual_seed(0)
S = 64                                # image side of sections 1-4
N_SAMPLES = 50000 if SMALL else 200000  # samples of one 3D Gaussian (sections 1-2)
FIT_SIZE = 48 if SMALL else 64        # image side of the fit (section 5)
FIT_VIEWS = 6 if SMALL else 8         # training views of the fit
FIT_POINTS = 2000 if SMALL else 4000  # starting Gaussians
FIT_ITERS = 150 if SMALL else 600     # fitting steps
F = 80.0                              # focal length in pixels

# One camera for sections 1-4, in gsplat's convention (OpenCV: x right, y down, z forward):
# at the origin, looking down +z, world-to-camera `viewmat` the identity, intrinsics `K`.
viewmat = torch.eye(4, dtype=torch.float64)[None]                     # (C=1, 4, 4)
K = torch.tensor([[[F, 0.0, S / 2], [0.0, F, S / 2], [0.0, 0.0, 1.0]]], dtype=torch.float64)


def quat_matrix(q):
    """(3, 3) rotation of a wxyz quaternion (normalised first)."""
    w, x, y, z = (q / q.norm()).tolist()
    return torch.tensor([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                         [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                         [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]],
                        dtype=torch.float64)


def render(means, quats, scales, opacities, colors, vm=viewmat, sh_degree=None):
    """(H, W, 3) colour and (H, W) alpha of Gaussians seen by the camera, over black."""
    rgb, alpha, _ = rasterization(means, quats, scales, opacities, colors, vm, K, S, S,
                                  sh_degree=sh_degree)
    return rgb[0], alpha[0, ..., 0]


# %% [markdown]
# ## 1. What a 3D Gaussian is
#
# A 3D Gaussian is a soft ellipsoid with five parameters:
#
# - `mean` (3,): its centre;
# - `quat` (4,): a rotation, a wxyz quaternion (any non-zero length; normalised);
# - `scale` (3,): the standard deviations along the rotated axes (linear, not log);
# - `opacity` in [0, 1]: its peak alpha;
# - a colour: RGB, or spherical-harmonic coefficients for a colour that depends on the
#   direction it is seen from (section 4).
#
# Its covariance is `Sigma = R diag(scale)^2 R^T`, and its density at `x` is
# `exp(-0.5 (x - mean)^T Sigma^-1 (x - mean))`. The columns of `R` are the ellipsoid's
# axes; sampling `mean + R (scale * z)` with `z` standard normal draws points from it.

# %%
mean = torch.tensor([0.3, -0.2, 5.0], dtype=torch.float64)
quat = torch.tensor([0.9, 0.2, 0.3, 0.4], dtype=torch.float64)
scale = torch.tensor([0.4, 0.15, 0.08], dtype=torch.float64)
Rq = quat_matrix(quat)
Sigma = Rq @ torch.diag(scale ** 2) @ Rq.T
gen = torch.Generator().manual_seed(0)
samples = mean + (torch.randn(N_SAMPLES, 3, generator=gen, dtype=torch.float64) * scale) @ Rq.T
print("Sigma =\n", Sigma.numpy().round(4))
print("covariance of the samples =\n", torch.cov(samples.T).numpy().round(4))
assert torch.allclose(torch.cov(samples.T), Sigma, atol=0.02 * float(scale.max() ** 2))

# %% [markdown]
# ## 2. Projecting one: EWA splatting
#
# A perspective projection `u = fx X / Z + cx`, `v = fy Y / Z + cy` is not linear, so the
# image of a 3D Gaussian is not exactly a 2D Gaussian. EWA splatting (Zwicker et al. 2001)
# linearises the projection at the mean: with `J` its (2, 3) Jacobian there and `W` the
# camera rotation, the 2D covariance is `J W Sigma W^T J^T`. 3DGS then adds 0.3 pixels^2 to
# the diagonal (a dilation that keeps every Gaussian at least about a pixel wide) and stores
# the inverse, the *conic*. `project_gaussians` returns the projected centres `means2d`,
# the depths, the conics and the radii (3.33 sigma, in pixels) used to find the tiles a
# Gaussian touches.
#
# The check: project the samples of section 1 through the same camera, one by one, and
# compare their covariance with EWA's (the inverse conic minus the dilation). The
# Gaussian is small next to its depth, so the linearisation is accurate (the difference
# left is mostly the samples' own noise).

# %%
radii, means2d, depths, conics, _ = project_gaussians(
    mean[None], quat[None], scale[None], viewmat, K, S, S)
a, b, c = conics[0, 0].tolist()
cov2d = torch.linalg.inv(torch.tensor([[a, b], [b, c]], dtype=torch.float64)) - 0.3 * torch.eye(
    2, dtype=torch.float64)
uv = samples[:, :2] / samples[:, 2:] * F + S / 2          # every sample, projected exactly
cov_samples = torch.cov(uv.T)
rel = float((cov_samples - cov2d).norm() / cov2d.norm())
print("EWA 2D covariance (pixels^2):\n", cov2d.numpy().round(2))
print("covariance of the projected samples:\n", cov_samples.numpy().round(2))
print(f"relative difference {rel:.2%}; radii {radii[0, 0].tolist()} px, depth "
      f"{float(depths[0, 0]):.2f}")
assert rel < 0.05, "EWA's 2D covariance should match the projected samples'"
# EWA projects the centre exactly; the samples' mean is pulled a little towards the camera's
# side (1/Z is convex), a tenth of a pixel here.
assert torch.allclose(means2d[0, 0], uv.mean(0), atol=0.5), "centre of the projected samples"


def ellipse(centre, cov, n_sigma):
    """(2, 100) points of the n_sigma contour of a 2D Gaussian."""
    t = torch.linspace(0, 2 * math.pi, 100, dtype=torch.float64)
    vals, vecs = torch.linalg.eigh(cov)
    circle = torch.stack([t.cos(), t.sin()]) * (n_sigma * vals.sqrt())[:, None]
    return (vecs @ circle + centre[:, None]).numpy()


def show_projection(ax, uv, centre, cov, title):
    show = uv[:3000].numpy()
    ax.scatter(show[:, 0], show[:, 1], s=1, alpha=0.3, color="tab:blue")
    for k in (1, 2, 3):
        ax.plot(*ellipse(centre, cov, k), color="tab:red", lw=1)
    ax.set_xlim(0, S)
    ax.set_ylim(S, 0)                       # image rows grow downwards
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)


fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
show_projection(axes[0], uv, means2d[0, 0], cov2d,
                "projected 3D samples (blue)\nEWA's 1, 2, 3-sigma ellipses (red)")
rgb1, alpha1 = render(mean[None], quat[None], scale[None], torch.tensor([1.0]).double(),
                      torch.tensor([[1.0, 0.6, 0.2]], dtype=torch.float64))
axes[1].imshow(rgb1.clamp(0, 1).numpy())
axes[1].set_title("the same Gaussian, rasterized", fontsize=9)
fig.tight_layout()
plt.show()


def show_gaussian(angle=30.0, sx=0.6, sy=0.2, depth=4.0):
    """A Gaussian turned by `angle` degrees about the view axis, at a depth (sliders)."""
    q = torch.tensor([math.cos(math.radians(angle) / 2), 0.0, 0.0,
                      math.sin(math.radians(angle) / 2)], dtype=torch.float64)
    m = torch.tensor([0.0, 0.0, depth], dtype=torch.float64)
    sc = torch.tensor([sx, sy, 0.1], dtype=torch.float64)
    img, _ = render(m[None], q[None], sc[None], torch.tensor([1.0]).double(),
                    torch.tensor([[1.0, 0.6, 0.2]], dtype=torch.float64))
    plt.figure(figsize=(3.5, 3.5))
    plt.imshow(img.clamp(0, 1).numpy())
    plt.title(f"angle {angle:.0f} deg, scales ({sx:.2f}, {sy:.2f}), depth {depth:.1f}",
              fontsize=9)
    plt.axis("off")
    plt.show()


if not STATIC:  # sliders in a live kernel; the picture above is the static version
    try:
        from ipywidgets import FloatSlider, interact
    except ImportError:
        interact = None
    if interact is not None:
        interact(show_gaussian, angle=FloatSlider(min=0, max=180, step=5, value=30),
                 sx=FloatSlider(min=0.05, max=1.0, step=0.05, value=0.6),
                 sy=FloatSlider(min=0.05, max=1.0, step=0.05, value=0.2),
                 depth=FloatSlider(min=2.0, max=10.0, step=0.5, value=4.0))

# %% [markdown]
# ## 3. Front-to-back compositing, and where the gradients are
#
# Every pixel sorts the Gaussians that touch it by depth and composites them front to
# back: Gaussian `i` has alpha `a_i = opacity_i exp(-0.5 d^T conic_i d)` at the pixel (`d`
# the offset from its projected centre; clamped at 0.999, and skipped below 1/255), and the
# pixel's colour is `sum_i c_i a_i prod_{j<i} (1 - a_j)`, stopping before the light left
# would fall below 1e-4. It is
# the alpha compositor of notebook 6, with Gaussian weights instead of disk weights.
#
# The difference from a mesh is where the gradient lives. A hard-rasterized triangle's
# pixel does not change when the triangle moves a little (notebook 2), and the soft
# rasterizer (notebook 3) makes only a band about `sigma` wide along the *edges* sensitive:
# a flat-coloured interior stays flat. A Gaussian's alpha is a smooth function of the pixel's
# offset from its centre, so **every pixel it covers** (alpha above 1/255) has a non-zero
# derivative with respect to its mean (except on the line through its centre, where the
# derivative changes sign).
#
# The pictures: the derivative of each pixel's red value with respect to moving the mean
# (or a flat rectangle's silhouette) along +x, by central differences of whole images. The
# rectangle's faint diagonal is the shared edge of its two triangles: there each triangle's
# soft coverage is only about one half, so the soft silhouette dips a little.

# %%
def d_image(render_fn, x, u, eps=1e-4):
    """d(image)/dt of render_fn(x + t u) at t=0, per pixel (central difference)."""
    with torch.no_grad():
        return (render_fn(x + eps * u) - render_fn(x - eps * u)) / (2 * eps)


g_quat = quat.clone()[None]
g_scale = scale.clone()[None]
g_opacity = torch.tensor([0.9], dtype=torch.float64)
g_color = torch.tensor([[1.0, 0.6, 0.2]], dtype=torch.float64)


def red(m):
    return render(m, g_quat, g_scale, g_opacity, g_color)[0][..., 0]


move_x = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
g_red = red(mean[None])
g_fd = d_image(red, mean[None], move_x)

# A flat white rectangle, soft-rasterized (a sigma that blurs its edges by ~1.5 px).
R_sq, T_sq = dr.look_at_view_transform(dist=5.0, elev=0.0, azim=0.0)
sq_cams = dr.FoVPerspectiveCameras(R=R_sq.double(), T=T_sq.double(),
                                   fov=2 * math.degrees(math.atan(S / 2 / F)))
sq_verts = torch.tensor([[-0.9, -0.6, 0.0], [0.9, -0.6, 0.0], [0.9, 0.6, 0.0],
                         [-0.9, 0.6, 0.0]], dtype=torch.float64)
sq_faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
SIGMA = (1.5 * 2 / S) ** 2 / 4


def square_silhouette(verts):
    mesh = dr.Meshes([verts], [sq_faces])
    settings = dr.RasterizationSettings(image_size=S, faces_per_pixel=2,
                                        blur_radius=SIGMA * math.log(1 / SIGMA - 1))
    frags = dr.MeshRasterizer(cameras=sq_cams, raster_settings=settings)(mesh)
    return dr.SoftSilhouetteShader(blend_params=dr.BlendParams(sigma=SIGMA))(
        frags, mesh)[0, ..., 3]


sq_img = square_silhouette(sq_verts)
sq_fd = d_image(square_silhouette, sq_verts, torch.tensor([[1.0, 0.0, 0.0]]).double().expand(4, 3))


def sensitive_share(image, derivative):
    """Share of the covered pixels (value > 5% of the peak) whose derivative exceeds 1% of
    the image's largest."""
    covered = image > 0.05 * image.max()
    return float((derivative.abs() > 0.01 * derivative.abs().max())[covered].float().mean())


share_g, share_sq = sensitive_share(g_red, g_fd), sensitive_share(sq_img, sq_fd)
fig, axes = plt.subplots(1, 4, figsize=(11, 2.9))
for ax, img, title, cmap in ((axes[0], g_red, "Gaussian (red channel)", "gray"),
                             (axes[1], g_fd, f"d/d mean_x: {share_g:.0%} of pixels", "RdBu"),
                             (axes[2], sq_img, "rectangle, soft silhouette", "gray"),
                             (axes[3], sq_fd, f"d/d x: {share_sq:.0%} of pixels", "RdBu")):
    lim = float(img.abs().max())
    im = ax.imshow(img.numpy(), cmap=cmap, vmin=-lim if cmap == "RdBu" else 0, vmax=lim)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.suptitle("pixels sensitive to moving the primitive along +x")
fig.tight_layout()
plt.show()
print(f"covered pixels with a gradient: Gaussian {share_g:.0%}, soft-rasterized rectangle "
      f"{share_sq:.0%}")
assert share_g > 0.8, "a splat's gradient covers its whole footprint"
assert share_sq < 0.5 * share_g, "a soft-rasterized flat face is sensitive only near its edges"

# %% [markdown]
# Autograd through the rasterizer's backward pass (the Numba kernels here; the same maths
# as the torch twin) must agree with those differences. Take three pixels inside the
# footprint, off its centre: the gradient of each pixel's red value with respect to the
# whole mean (x, y and z) is non-zero and matches central differences.

# %%
ys, xs = torch.nonzero(g_red > 0.3 * g_red.max(), as_tuple=True)
u0, v0 = means2d[0, 0].tolist()
off_centre = ((xs + 0.5 - u0).abs() > 2) & ((ys + 0.5 - v0).abs() > 2)
pick = torch.nonzero(off_centre)[:, 0]
pixels = [(int(ys[i]), int(xs[i])) for i in pick[torch.linspace(0, len(pick) - 1, 3).long()]]
for r, cc in pixels:
    m = mean[None].clone().requires_grad_(True)
    render(m, g_quat, g_scale, g_opacity, g_color)[0][r, cc, 0].backward()
    fd = torch.stack([d_image(red, mean[None], e[None])[r, cc] for e in torch.eye(3).double()])
    print(f"pixel ({r}, {cc}): autograd {m.grad[0].numpy().round(4)}, "
          f"finite differences {fd.numpy().round(4)}")
    assert float(m.grad.abs().max()) > 1e-3, "a covered pixel has a gradient"
    assert torch.allclose(m.grad[0], fd, rtol=1e-3, atol=1e-6), "autograd != finite diff."

# %% [markdown]
# ## 4. Spherical harmonics: a colour that depends on the view
#
# Shiny or translucent things look different from different sides. 3DGS gives each
# Gaussian, per colour channel, coefficients of real spherical harmonics `Y_lm` of the unit
# direction `d` from the camera to the Gaussian's centre; the colour is
# `sum_lm k_lm Y_lm(d) + 0.5`, clamped at 0. Degree 0 is one constant
# (`Y_00 = 0.282`): a plain colour. Degree 1 adds three linear terms, `-0.489 y`,
# `0.489 z`, `-0.489 x` (gsplat's order): a colour that changes linearly with the direction.
#
# One Gaussian at the origin, grey at degree 0, with `+0.8` on the red channel's `z` term
# and `-0.8` on the blue's: seen from the front (a camera at z = -4, looking along +z,
# so d = +z) it turns red; seen from behind (d = -z) it turns blue.

# %%
sh = torch.zeros(1, 4, 3, dtype=torch.float64)   # (N, (degree + 1)^2, RGB)
sh[0, 2, 0], sh[0, 2, 2] = 0.8, -0.8              # the z term: red +0.8, blue -0.8


def look_from(z):
    """World-to-camera of a camera at (0, 0, z) looking at the origin (OpenCV axes)."""
    vm = torch.eye(4, dtype=torch.float64)
    if z > 0:                 # turned half a circle about y: looks along -z
        vm[0, 0], vm[2, 2] = -1.0, -1.0
    vm[2, 3] = abs(z)
    return vm[None]


origin = torch.zeros(1, 3, dtype=torch.float64)
sh_views = {}
for name, z in (("front (camera at z=-4)", -4.0), ("back (camera at z=+4)", 4.0)):
    img, alpha = render(origin, g_quat, g_scale, torch.tensor([1.0]).double(), sh,
                        vm=look_from(z), sh_degree=1)
    centre = (alpha > 0.99 * alpha.max()).nonzero()[0]
    colour = img[centre[0], centre[1]] / alpha[centre[0], centre[1]]   # un-premultiplied
    view_dir = torch.tensor([0.0, 0.0, 1.0 if z < 0 else -1.0], dtype=torch.float64)
    expected = (spherical_harmonics(1, view_dir[None], sh) + 0.5).clamp(min=0)[0]
    sh_views[name] = (img, colour, expected)
    print(f"{name}: rendered colour {colour.numpy().round(3)}, SH says "
          f"{expected.numpy().round(3)}")
    assert torch.allclose(colour, expected, atol=1e-3), "the colour the SH gives"
(front_img, front, _), (back_img, back, _) = sh_views.values()
assert front[0] > back[0] + 0.5 and back[2] > front[2] + 0.5, "red from the front, blue behind"

fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, (name, (img, _, _)) in zip(axes, sh_views.items(), strict=True):
    ax.imshow(img.clamp(0, 1).numpy())
    ax.set_title(name, fontsize=9)
    ax.axis("off")
fig.suptitle("one Gaussian, SH degree 1")
fig.tight_layout()
plt.show()

# %% [markdown]
# Degrees 2 and 3 add 5 and 7 more terms per channel (16 coefficients in all at degree
# 3): sharper changes with the view, such as highlights. Training switches the bands on one
# at a time (`sh_degree_every`), so the plain colour settles first.
#
# ## 5. Fitting Gaussians to views of the cow
#
# `diffrend splat` in miniature: `prepare_splat_inputs` renders the bundled cow unlit from
# training and held-out cameras, `initial_points` samples its surface (with colours) as the
# starting Gaussians, and `fit_splat` runs 3DGS's loop: each step renders one random training
# view, compares it by L1 + D-SSIM, and Adam moves every parameter (positions, log-scales,
# rotations, opacity logits, SH coefficients) with its own learning rate; every
# `refine_every` steps the adaptive density control clones small Gaussians with large
# 2D-mean gradients, splits large ones, and prunes transparent ones. The full job
# (`diffrend splat`, 3000 steps at 256x256) reaches about 30 dB on held-out views; here a
# few dozen steps at a small size show the trend.

# %%
inputs = prepare_splat_inputs(views=FIT_VIEWS + 2, heldout=2, image_size=FIT_SIZE)
train, heldout = inputs.views.train, inputs.views.heldout
points, colors = initial_points(inputs, FIT_POINTS, seed=0)
settings = FitSplatSettings(iters=FIT_ITERS, sh_degree=1, sh_degree_every=FIT_ITERS // 2,
                            refine_start=FIT_ITERS // 4, refine_stop=3 * FIT_ITERS // 4,
                            refine_every=FIT_ITERS // 4, snapshot_every=max(1, FIT_ITERS // 6))
result = fit_splat(train, points, colors, settings=settings, progress=False)


def psnr_of(images, targets):
    return psnr(float(((images - targets) ** 2).mean()))


def render_start(cameras):
    """The starting Gaussians (as fit_splat builds them) seen from cameras, (V, H, W, 3)."""
    start = initial_gaussians(points, colors, settings.sh_degree, settings.init_opacity)
    vm, Ks = viewmats_and_intrinsics(cameras, FIT_SIZE, FIT_SIZE)
    with torch.no_grad():
        return render_gaussians(start, vm, Ks, FIT_SIZE, FIT_SIZE, 0)[0].clamp(0, 1)


# PSNR of the training views the snapshots show, along the run (frames are uint8 renders).
snap = result.snapshot_views
snap_targets = train.images[snap].double()
curve = [(0, psnr_of(render_start(train.cameras[snap]).double(), snap_targets))]
curve += [(step, psnr_of(torch.from_numpy(frame).double() / 255, snap_targets))
          for step, frame in result.frames]
held_before = render_start(heldout.cameras)
held_after = render_result(result, heldout.cameras, FIT_SIZE, FIT_SIZE, 1)
p_before, p_after = psnr_of(held_before, heldout.images), psnr_of(held_after, heldout.images)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].plot([h["loss"] for h in result.history])
axes[0].set_xlabel("step")
axes[0].set_title("L1 + D-SSIM of each step's view")
axes[1].plot(*zip(*curve, strict=True), "o-")
axes[1].set_xlabel("step")
axes[1].set_ylabel("PSNR (dB)")
axes[1].set_title("PSNR of four training views")
fig.tight_layout()
plt.show()
fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
for ax, img, title in ((axes[0], held_before[0], f"start: {p_before:.1f} dB"),
                       (axes[1], held_after[0], f"fitted: {p_after:.1f} dB"),
                       (axes[2], heldout.images[0], "held-out target")):
    ax.imshow(img.clamp(0, 1).numpy())
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()
plt.show()
print(f"{result.means.shape[0]} Gaussians after {result.steps} steps "
      f"(refinements: {result.refinements}); held-out PSNR {p_before:.1f} -> {p_after:.1f} dB")
assert curve[-1][1] > curve[0][1] + 1.0, "training PSNR should rise"
assert p_after > p_before + 1.0, "held-out PSNR should rise"

# %% [markdown]
# ## 6. Pulsar: spheres blended by depth
#
# Pulsar (Lassner and Zollhöfer 2021) draws each point as a sphere of a given radius and
# opacity, and mixes **all** spheres a pixel's ray hits, with weights that fall with depth:
# sphere `i`, whose first intersection with the ray has depth `d_i` normalised to [0, 1]
# between the near and far planes, gets `w_i = closeness_i o_i exp(o_i (1 - d_i) / gamma)`
# (closeness: 1 where the ray passes through the centre, 0 at the rim), the background a
# small fixed weight, and the pixel is the weighted mean `sum_i w_i c_i / sum_i w_i`. `gamma`
# sets how sharply depth decides: near 1 the spheres blend almost like a transparent
# average, near 1e-5 the front sphere takes the pixel (a z-buffer, but still
# differentiable). PyTorch3D's `PulsarPointsRenderer` takes a `Pointclouds` and a camera;
# `radius` in the raster settings (here world units, `radius_world=True`) is the spheres'
# radius.
#
# Two spheres: a red one in front, a blue one behind it, half overlapping.

# %%
R_p, T_p = dr.look_at_view_transform(dist=5.0, elev=0.0, azim=0.0)
pulsar_cams = dr.FoVPerspectiveCameras(R=R_p, T=T_p, fov=30.0, znear=1.0, zfar=10.0)
balls = dr.Pointclouds(points=[torch.tensor([[-0.25, 0.0, 0.6], [0.25, 0.0, -0.6]])],
                       features=[torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])])
pulsar = PulsarPointsRenderer(dr.PointsRasterizer(
    cameras=pulsar_cams, raster_settings=dr.PointsRasterizationSettings(image_size=S,
                                                                        radius=0.5)))
gammas = [1e-4, 0.01, 0.1, 1.0]
front_share = {}
fig, axes = plt.subplots(1, len(gammas), figsize=(2.6 * len(gammas), 2.8))
for ax, gamma in zip(axes, gammas, strict=True):
    img = pulsar(balls, gamma=(gamma,), radius_world=True,
                 bg_col=torch.ones(3))[0]
    # The pixel on the axis between the two centres' images: both spheres cover it.
    r, cc = S // 2, S // 2
    front_share[gamma] = float(img[r, cc, 0] / (img[r, cc, 0] + img[r, cc, 2]))
    ax.imshow(img.clamp(0, 1).numpy())
    ax.plot([cc], [r], "k+")
    ax.set_title(f"gamma {gamma:g}: red share {front_share[gamma]:.2f}", fontsize=9)
    ax.axis("off")
fig.suptitle("red sphere in front, blue behind; + marks the pixel measured")
fig.tight_layout()
plt.show()
print("share of the front (red) sphere at the overlap:",
      {g: round(v, 3) for g, v in front_share.items()})
assert front_share[1e-4] > 0.99, "a small gamma lets the front sphere take the pixel"
assert front_share[1.0] < 0.9 * front_share[1e-4], "a large gamma blends the two"
shares = [front_share[g] for g in gammas]
assert all(a >= b for a, b in zip(shares[:-1], shares[1:], strict=True)), \
    "the front sphere's share falls as gamma grows"


def show_pulsar(gamma_log10=-2.0):
    """The two spheres at gamma = 10^gamma_log10 (slider)."""
    img = pulsar(balls, gamma=(10 ** gamma_log10,), radius_world=True, bg_col=torch.ones(3))[0]
    plt.figure(figsize=(3.5, 3.5))
    plt.imshow(img.clamp(0, 1).numpy())
    plt.title(f"gamma {10 ** gamma_log10:.1e}", fontsize=9)
    plt.axis("off")
    plt.show()


if not STATIC:  # sliders in a live kernel; the row above is the static version
    try:
        from ipywidgets import FloatSlider, interact
    except ImportError:
        interact = None
    if interact is not None:
        interact(show_pulsar, gamma_log10=FloatSlider(min=-5, max=0, step=0.25, value=-2))

# %% [markdown]
# Both renderers are differentiable in the positions, colours, sizes and opacities, and
# both give gradients wherever a primitive covers a pixel, not only at silhouettes: Pulsar
# through its depth weights, Gaussians through their smooth alpha. `diffrend splat` (see
# the how-to) is the full 3DGS job; the Pulsar renderers accept PyTorch3D's arguments.
