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
# # What breaks differentiability
#
# A rasterizer answers two questions per pixel: *which* face covers it, and *where* on that
# face the pixel falls. The second answer is smooth in the vertices; the first is a step
# function, and that is where gradients vanish. You will see the steps (coverage, the
# z-buffer, occlusion), compare autograd with finite differences pixel by pixel, and see
# which part of a hard render *is* differentiable. Runs in about 15 seconds.

# %%
import os

SMALL = os.environ.get("DIFFREND_LAB_SMALL") == "1"    # CI's test sizes (seconds, not minutes)
STATIC = os.environ.get("DIFFREND_LAB_STATIC") == "1"  # no widgets: the docs site and CI

# Idle OpenMP threads wait passively, so torch's and Numba's thread pools do not spin on
# each other's cores (diffrend sets this when imported before torch; here torch comes
# first). Without it, a busy 2-core machine runs the kernels up to 10x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import diffrend as dr  # noqa: E402
from diffrend.gradients import render_silhouette, supersampled_silhouette  # noqa: E402

torch.manual_seed(0)
S = 16 if SMALL else 24           # image side: small, so single pixels show
SWEEP = 60 if SMALL else 150      # positions in each sweep

# %% [markdown]
# ## A tiny scene
#
# An orthographic camera with `R = I, T = 0` maps world x and y straight to NDC (PyTorch3D's
# convention: +x is the image's *left*, +y up; the image spans [-1, 1]), and z is depth.
# One triangle with a red, a green and a blue corner; a hard Phong shader under ambient light
# shows the interpolated vertex colours as they are.

# %%
camera = dr.FoVOrthographicCameras()
corners = torch.tensor([[0.6, -0.55, 2.0], [-0.55, -0.6, 2.0], [0.0, 0.6, 2.0]])
colors = torch.eye(3)                                     # red, green, blue corners
renderer = dr.MeshRenderer(
    dr.MeshRasterizer(raster_settings=dr.RasterizationSettings(image_size=S)),
    dr.HardPhongShader(lights=dr.AmbientLights(),
                       blend_params=dr.BlendParams(background_color=(0.0, 0.0, 0.0))))


def triangles(verts, colors):
    """A mesh of len(verts) // 3 separate triangles with per-vertex colours."""
    faces = torch.arange(len(verts)).reshape(-1, 3)
    return dr.Meshes([verts], [faces], textures=dr.TexturesVertex([colors]))


def with_x(verts, i, x):
    """verts with vertex i's x coordinate replaced by x (keeps x's autograd graph)."""
    return torch.cat([verts[:i], torch.stack([x, verts[i, 1], verts[i, 2]])[None],
                      verts[i + 1:]])


image = renderer(triangles(corners, colors), cameras=camera)[0, ..., :3]
plt.figure(figsize=(4, 4))
plt.imshow(image.clamp(0, 1))
plt.title(f"one triangle, {S}x{S} pixels")
plt.xlabel("x (pixels)")
plt.ylabel("y (pixels)")
plt.show()

# %% [markdown]
# ## Coverage is a step function
#
# Slide the red corner sideways (its world x) and watch one pixel near the edge it drags.
# The hard rasterizer samples the pixel's centre: the value is 0 until the edge passes the
# centre, then 1. Its derivative is 0 everywhere except at one point, where it does not
# exist. The true *area* the triangle covers in that pixel (measured with 16x16 samples per
# pixel) ramps up over about a pixel's travel: that ramp has the derivative a fit would need.
# SoftRas (Liu et al. 2019) replaces the step by a smooth blur of it.

# %%
xs = torch.linspace(0.3, 1.0, SWEEP)
sigma = (2 / S) ** 2 / 9                     # SoftRas blur of about one pixel
hard, area, soft = [], [], []
for x in xs:
    mesh = triangles(with_x(corners, 0, x), colors)
    hard.append(render_silhouette(mesh, camera, S, "hard")[0])
    area.append(supersampled_silhouette(mesh, camera, S)[0])
    soft.append(render_silhouette(mesh, camera, S, "soft", sigma=sigma)[0].detach())
hard, area, soft = torch.stack(hard), torch.stack(area), torch.stack(soft)
# the pixel whose true coverage is nearest 1/2 half-way through the sweep
row, col = divmod(int((area[SWEEP // 2] - 0.5).abs().argmin()), S)

plt.figure(figsize=(8, 3.2))
plt.plot(xs, hard[:, row, col], label="hard rasterizer (pixel centre)")
plt.plot(xs, area[:, row, col], label="true covered area (16x16 samples)")
plt.plot(xs, soft[:, row, col], "--", label="SoftRas, blur ~1 px")
plt.xlabel("x of the red corner (world units; a pixel is %.3f)" % (2 / S))
plt.ylabel(f"pixel ({row}, {col})")
plt.title("one pixel's value as a vertex moves")
plt.legend(fontsize=8)
plt.show()

# %% [markdown]
# The same sweep over the whole image: the hard render flips whole pixels, the true coverage
# shades the pixels the edge crosses. (With a live kernel, a slider moves the corner.)

# %%
def show_coverage(x=0.6, axes=None):
    mesh = triangles(with_x(corners, 0, torch.tensor(x)), colors)
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(8, 4))[1]
    axes[0].imshow(render_silhouette(mesh, camera, S, "hard")[0], cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"hard, x = {x:.2f}", fontsize=9)
    axes[1].imshow(supersampled_silhouette(mesh, camera, S)[0], cmap="gray", vmin=0, vmax=1)
    axes[1].set_title(f"true coverage, x = {x:.2f}", fontsize=9)
    for a in axes:
        a.plot(col, row, "r+")
        a.set_xticks([])
        a.set_yticks([])


fig, ax = plt.subplots(2, 3, figsize=(8, 5.5))
for i, x in enumerate((0.55, 0.65, 0.75)):
    show_coverage(x, ax[:, i])
plt.tight_layout()
plt.show()

if not STATIC:
    try:
        from ipywidgets import FloatSlider, interact
    except ImportError:
        interact = None
    if interact is not None:
        interact(lambda x: show_coverage(x), x=FloatSlider(min=0.3, max=1.0, step=0.01, value=0.6))

# %% [markdown]
# Checks: the hard pixel only takes the values 0 and 1 and changes exactly once, while the
# true coverage passes through values in between.

# %%
h = hard[:, row, col]
assert set(h.unique().tolist()) <= {0.0, 1.0}, "hard coverage is binary"
assert int((h[1:] != h[:-1]).sum()) == 1, "the hard pixel should flip exactly once"
a = area[:, row, col]
assert ((a > 0.1) & (a < 0.9)).sum() >= 3, "the true coverage should ramp, not jump"

# %% [markdown]
# ## The z-buffer keeps the nearest face: an argmin
#
# Two overlapping triangles, red and blue. Blue sits at depth 2; move red's depth through 2.
# At each pixel the rasterizer keeps the face with the smallest depth, so the colour of a
# pixel in the overlap flips from red to blue the instant the depths cross. The colour
# does not depend on the depth anywhere else: its derivative is zero, except at the crossing
# where it is infinite. Depth *order* gets no gradient.

# %%
blue = torch.tensor([[-0.7, -0.7, 2.0], [0.3, -0.7, 2.0], [-0.2, 0.5, 2.0]])
red = torch.tensor([[0.7, -0.5, 0.0], [-0.3, -0.5, 0.0], [0.2, 0.7, 0.0]])
pair_colors = torch.tensor([[1.0, 0, 0]] * 3 + [[0, 0, 1.0]] * 3)


def pair(red_depth, red_shift=0.0):
    """The red triangle (at red_depth, shifted in x) and the blue one at depth 2."""
    shifted = red + torch.stack([torch.as_tensor(red_shift), torch.tensor(0.0),
                                 torch.as_tensor(red_depth)])
    return triangles(torch.cat([shifted, blue]), pair_colors)


depths = torch.linspace(1.5, 2.5, SWEEP)
redness = torch.stack([renderer(pair(z), cameras=camera)[0, S // 2, S // 2, 0]
                       for z in depths])

fig, ax = plt.subplots(1, 3, figsize=(10, 3.2))
for a, z in ((ax[0], 1.9), (ax[1], 2.1)):
    a.imshow(renderer(pair(z), cameras=camera)[0, ..., :3].clamp(0, 1))
    a.plot(S // 2, S // 2, "w+")
    a.set_title(f"red at depth {z}")
    a.set_xlabel("x (pixels)")
    a.set_ylabel("y (pixels)")
ax[2].plot(depths, redness)
ax[2].set_xlabel("depth of the red triangle")
ax[2].set_ylabel("red channel at the + pixel")
ax[2].set_title("the z-buffer's argmin")
plt.tight_layout()
plt.show()

# %% [markdown]
# Check: the marked pixel is fully red while red is nearer (depth below 2) and not red at
# all once it is behind.

# %%
assert (redness[depths < 1.99] == 1).all() and (redness[depths > 2.01] == 0).all()

# %% [markdown]
# ## Hard rasterization: zero gradient almost everywhere
#
# Now the gradient images. For the triangle's silhouette, and for one vertex coordinate
# (the red corner's x), compare
#
# - **autograd**: `d pixel / d x` for every pixel, from the hard renderer's backward pass;
# - **finite differences**: `(pixel(x + h) - pixel(x - h)) / 2h` with h half a pixel.
#
# The hard silhouette has no path back to the vertices at all: its autograd gradient is
# exactly zero at every pixel. The finite differences are not: pixels whose centres the
# moving edges sweep over change by 1, a difference of `1 / 2h`. That is where a useful
# gradient must live: on the silhouette edges attached to the moving vertex.

# %%
x0 = corners[0, 0].clone().requires_grad_(True)
step = 1.0 / S                                          # half a pixel in NDC
sil = render_silhouette(triangles(with_x(corners, 0, x0), colors), camera, S, "hard")[0]
if sil.requires_grad:                                   # (it does not: no graph at all)
    autograd_sil = torch.autograd.functional.jacobian(
        lambda x: render_silhouette(triangles(with_x(corners, 0, x), colors), camera, S,
                                    "hard")[0], x0)
else:
    autograd_sil = torch.zeros(S, S)
fd_sil = (render_silhouette(triangles(with_x(corners, 0, x0 + step), colors), camera, S, "hard")
          - render_silhouette(triangles(with_x(corners, 0, x0 - step), colors), camera, S,
                              "hard"))[0].detach() / (2 * step)



def show_gradients(image, image_title, autograd, fd, autograd_title):
    """The render, autograd's gradient image and the finite differences, on one colour scale."""
    lim = fd.abs().max().item()
    fig, ax = plt.subplots(1, 3, figsize=(10, 3.4))
    ax[0].imshow(image, cmap="gray")
    ax[0].set_title(image_title)
    ax[1].imshow(autograd, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax[1].set_title(autograd_title)
    ax[2].imshow(fd, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax[2].set_title("finite differences")
    for a in ax:
        a.set_xlabel("x (pixels)")
        a.set_ylabel("y (pixels)")
    plt.tight_layout()
    plt.show()


show_gradients(sil.detach(), "hard silhouette", autograd_sil, fd_sil, "autograd d pixel / d x")

# %% [markdown]
# Checks: autograd's silhouette gradient is exactly zero at every pixel; the finite
# difference is non-zero on some pixels, and all of those lie within one pixel of the
# silhouette's edge (zero farther away, inside and outside).

# %%
edge_band = (F.max_pool2d(sil.detach()[None, None], 3, 1, 1)        # within 1 px of the edge
             + F.max_pool2d(-sil.detach()[None, None], 3, 1, 1))[0, 0] > 0
assert (autograd_sil == 0).all(), "the hard silhouette has no gradient"
assert (fd_sil != 0).sum() > 0, "moving the vertex should flip some pixels"
assert (fd_sil[~edge_band] == 0).all(), "pixels away from the edge never change"

# %% [markdown]
# ## Occlusion boundaries are edges too
#
# Edges are not only where the object meets the background. Put the red triangle in front
# of the blue one and slide it: along red's edge *over* blue the pixels flip between two
# colours. That occlusion boundary is a step as well, with the same zero autograd gradient
# and a finite difference only on the boundary pixels.

# %%
shift = torch.tensor(0.0, requires_grad=True)
occl = renderer(pair(1.0, shift), cameras=camera)[0, ..., :3]
autograd_occ = torch.autograd.functional.jacobian(
    lambda s: renderer(pair(1.0, s), cameras=camera)[0, ..., 2], shift)   # blue channel
fd_occ = (renderer(pair(1.0, step), cameras=camera)
          - renderer(pair(1.0, -step), cameras=camera))[0, ..., 2].detach() / (2 * step)

show_gradients(occl.detach().clamp(0, 1), "red in front of blue", autograd_occ, fd_occ,
               "autograd d blue / d shift")

# %% [markdown]
# Checks: autograd is zero everywhere (flat colours: nothing to interpolate), while finite
# differences are non-zero on pixels that are blue on one side of the step and red on the
# other: the occlusion boundary inside the object, not only its outline.

# %%
def near(channel):
    """Pixels with that colour channel lit within one pixel."""
    return F.max_pool2d(occl[..., channel].detach()[None, None], 3, 1, 1)[0, 0] > 0.5


assert (autograd_occ == 0).all(), "no autograd gradient across an occlusion boundary"
assert ((fd_occ != 0) & near(0) & near(2)).any(), "the red/blue boundary should change"

# %% [markdown]
# ## What *is* differentiable: where inside a face a pixel falls
#
# Inside a face, the colour is interpolated from the vertex colours with the pixel's
# barycentric coordinates, and those move smoothly with the vertices. So for the red channel
# of the RGB triangle, autograd's `d pixel / d x` is non-zero at every interior pixel
# (moving the red corner changes how much red each pixel gets), and it agrees with the
# finite differences there. What autograd misses is exactly the edge: the difference of the
# two shows only the pixels the edge sweeps over.

# %%
autograd_rgb = torch.autograd.functional.jacobian(
    lambda x: renderer(triangles(with_x(corners, 0, x), colors), cameras=camera)[0, ..., 0], x0)
fd_rgb = (renderer(triangles(with_x(corners, 0, x0 + step), colors), cameras=camera)
          - renderer(triangles(with_x(corners, 0, x0 - step), colors), cameras=camera)
          )[0, ..., 0].detach() / (2 * step)

lim = autograd_rgb.abs().max().item()
fig, ax = plt.subplots(1, 3, figsize=(10, 3.4))
for a, img, title in ((ax[0], autograd_rgb, "autograd d red / d x"),
                      (ax[1], fd_rgb, "finite differences"),
                      (ax[2], fd_rgb - autograd_rgb, "difference: the edge")):
    a.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
    a.set_title(title)
    a.set_xlabel("x (pixels)")
    a.set_ylabel("y (pixels)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Checks: autograd's colour gradient is non-zero inside the face; well inside (more than a
# pixel from the edge) it matches the finite differences to 2% (barycentrics are not quite
# linear in x); autograd and finite differences disagree only near the edge.

# %%
inside = (sil.detach() > 0) & ~edge_band
assert (autograd_rgb[inside] != 0).all(), "interpolated colour has a gradient inside"
assert torch.allclose(autograd_rgb[inside], fd_rgb[inside], rtol=0.02, atol=2e-3)
assert ((fd_rgb - autograd_rgb).abs()[~edge_band] < 5e-3).all()

# %% [markdown]
# ## Where the gradient should be, and who supplies it
#
# | | hard render's autograd | what it should be |
# |---|---|---|
# | inside a face (colour, depth, shading) | exact | the same |
# | silhouette edges | 0 | the rate the covered area changes |
# | occlusion boundaries | 0 | the same, between two surfaces |
# | depth order (z-buffer) | 0 | undefined: a jump |
#
# Every differentiable rasterizer keeps the interior as is and adds something at the edges:
# SoftRas (Liu et al. 2019) blurs coverage so it has a derivative; the Neural Mesh Renderer
# (Kato et al. 2018) and OpenDR (Loper & Black 2014) keep the hard image and invent a
# backward rule at edges; nvdiffrast (Laine et al. 2020) antialiases edges analytically.
# In diffrend they are `gradient_method=` "soft", "nmr", "opendr" and "antialias"
# (`docs/gradients.md`).
