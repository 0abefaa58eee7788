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
# # Point clouds
#
# Points need no faces: each is a small disk on screen, and a renderer mixes the disks that
# cover a pixel. This notebook rasterizes a coloured cloud sampled from the cow, looks at
# what the rasterizer returns, compares the compositors that turn it into an image, shows
# what `radius` and `points_per_pixel` do, and ends by fitting a random cloud to views of
# the cow. It runs in about 20 seconds on two CPU cores.

# %%
import os

SMALL = os.environ.get("DIFFREND_LAB_SMALL") == "1"    # CI's test sizes (seconds, not minutes)
STATIC = os.environ.get("DIFFREND_LAB_STATIC") == "1"  # no widgets: the docs site and CI
# Idle OpenMP threads wait passively, so torch's and Numba's thread pools do not spin on
# each other's cores (diffrend sets this when imported before torch; here torch comes
# first). Without it, a busy 2-core machine runs the kernels up to 10x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import diffrend as dr  # noqa: E402
from diffrend.io import default_mesh_path  # noqa: E402
from diffrend.losses import chamfer_distance, sample_points_from_meshes  # noqa: E402

torch.manual_seed(0)
S = 48 if SMALL else 64             # image side
N_POINTS = 5000 if SMALL else 20000  # points sampled on the cow
ITERS = 80 if SMALL else 300        # fitting steps
N_FIT = 1500 if SMALL else 3000     # points of the fitted cloud
N_VIEWS = 8 if SMALL else 12        # training views of the fit

cow = dr.load_objs_as_meshes([default_mesh_path()])
gen = torch.Generator().manual_seed(0)
points, colors = sample_points_from_meshes(cow, N_POINTS, return_textures=True, generator=gen)
cloud = dr.Pointclouds(points=[points[0]], features=[colors[0]])
R, T = dr.look_at_view_transform(dist=2.7, elev=10, azim=30)
camera = dr.FoVPerspectiveCameras(R=R, T=T)


def px_radius(pixels, size=S):
    """A radius of `pixels` pixels in NDC units (the image's short side spans 2)."""
    return 2.0 * pixels / size


def render(cloud, cameras, compositor, radius_px=1.5, points_per_pixel=8, size=S):
    settings = dr.PointsRasterizationSettings(image_size=size, radius=px_radius(radius_px, size),
                                              points_per_pixel=points_per_pixel)
    return dr.PointsRenderer(dr.PointsRasterizer(cameras=cameras, raster_settings=settings),
                             compositor)(cloud)


def show_row(images, titles, suptitle, cmap=None):
    fig, axes = plt.subplots(1, len(images), figsize=(2.5 * len(images), 2.9))
    for ax, img, title in zip(np.atleast_1d(axes), images, titles, strict=True):
        img = img.detach()
        im = ax.imshow(img.clamp(0, 1) if img.ndim == 3 else img, cmap=cmap)
        if img.ndim == 2:
            fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(suptitle)
    fig.tight_layout()
    plt.show()


# %% [markdown]
# ## 1. What the points rasterizer returns
#
# `PointsRasterizer` projects every point and lists, per pixel, the `points_per_pixel` (K)
# nearest points **in depth** among those whose disk of radius `radius` (NDC units) covers
# the pixel centre. `PointFragments` holds (N, H, W, K) tensors, nearest first:
#
# - `idx`: the packed index of each listed point (-1 for an empty slot);
# - `zbuf`: its view depth (-1 when empty);
# - `dists`: its squared NDC distance from the pixel centre, at most `radius^2`.
#
# The renderer turns `dists` into a weight `1 - dists / radius^2` (1 at the disk's centre,
# 0 at its rim): that weight is where the gradient with respect to the point positions
# comes from.

# %%
settings = dr.PointsRasterizationSettings(image_size=S, radius=px_radius(1.5), points_per_pixel=8)
frag = dr.PointsRasterizer(cameras=camera, raster_settings=settings)(cloud)
print({name: tuple(getattr(frag, name).shape) for name in ("idx", "zbuf", "dists")})
n_listed = (frag.idx >= 0).sum(-1)[0].float()
show_row([n_listed, torch.where(frag.idx[0, ..., 0] >= 0, frag.zbuf[0, ..., 0], np.nan),
          torch.where(frag.idx[0, ..., 0] >= 0, frag.dists[0, ..., 0] / settings.radius ** 2,
                      np.nan)],
         ["listed points per pixel", "zbuf of the nearest", "dists / radius^2, nearest"],
         f"{N_POINTS} cow points at {S}x{S}, radius 1.5 px, K=8", cmap="viridis")
listed = frag.idx >= 0
assert bool((frag.dists[listed] <= settings.radius ** 2 + 1e-7).all()), "a point beyond radius"
assert bool((frag.zbuf[..., 1:] >= frag.zbuf[..., :-1])[listed[..., 1:]].all()), "not sorted"

# %% [markdown]
# The assertions: every listed point is within the radius, and slots are sorted front to
# back.
#
# ## 2. Compositors
#
# A compositor mixes the features `f_k` (here RGB) of the K listed points with their
# weights `a_k`:
#
# - `AlphaCompositor`: front to back, `sum_k a_k f_k prod_{j<k} (1 - a_j)`: the nearest
#   point hides what is behind it; what light the K points let through is lost (mixed with
#   0), so a pixel only grazed by points comes out dark;
# - `NormWeightedCompositor`: `sum_k a_k f_k / sum_k a_k`: a weighted mean, full strength
#   wherever any point reaches, with no occlusion (front and back points are averaged);
# - `WeightedSumCompositor`: `sum_k a_k f_k`: brighter where points pile up (can exceed 1).
#
# `background_color` only fills pixels where **no** point is listed; it is not blended
# behind partly covered pixels (PyTorch3D's behaviour). To composite over a background,
# give the points an extra feature 1: the alpha compositor then returns the coverage in
# that channel, and `rgb + (1 - coverage) * background` is the blend (section 4 uses that
# channel as the silhouette).
# (diffrend's other splatting code, `SplatterPhongShader`, splats shaded *mesh* fragments
# (Cole et al. 2021); it is not a points compositor.)

# %%
white = (1.0, 1.0, 1.0)
compositors = {"alpha": dr.AlphaCompositor(background_color=white),
               "norm-weighted": dr.NormWeightedCompositor(background_color=white),
               "weighted sum": dr.WeightedSumCompositor(background_color=white)}
images = {name: render(cloud, camera, comp)[0] for name, comp in compositors.items()}
show_row(list(images.values()), list(images), "the same fragments, three compositors")

# %% [markdown]
# Check the formulas at one pixel with several listed points, by hand from the fragments,
# and that the compositors disagree there as explained: alpha compositing lets the nearest
# point dominate, the normalised mean averages all K equally by weight.

# %%
weights = torch.where(listed, 1 - frag.dists / settings.radius ** 2, 0.0)[0]   # (H, W, K)
feats = cloud.features_packed()
busy = (listed[0].sum(-1) >= 4).nonzero()
r, c = (int(v) for v in busy[len(busy) // 2])
a, f = weights[r, c], feats[frag.idx[0, r, c].clamp(min=0)]
trans = torch.cumprod(torch.cat([torch.ones(1), 1 - a[:-1]]), 0)
by_hand = {"alpha": (a * trans) @ f, "norm-weighted": (a @ f) / a.sum(), "weighted sum": a @ f}
for name in images:
    print(f"{name:14s} pixel ({r}, {c}): rendered {images[name][r, c].numpy().round(3)}, "
          f"by hand {by_hand[name].numpy().round(3)}")
    assert torch.allclose(images[name][r, c], by_hand[name], atol=1e-5), name
front_share = float((a[0] * trans[0]) / (a * trans).sum())
print(f"share of the nearest point in the alpha blend: {front_share:.2f}, "
      f"in the normalised mean: {float(a[0] / a.sum()):.2f}")
assert front_share > float(a[0] / a.sum()), "alpha compositing should favour the front point"

# %% [markdown]
# ## 3. `radius` and `points_per_pixel`
#
# The radius trades holes for blur: too small and the background shows between points,
# too large and the cloud looks swollen (and, as points are listed by depth, a grazing point
# just in front of the surface takes the first slot). `points_per_pixel` bounds how many
# points a pixel mixes: with K=1 the pixel keeps the colour of one point times its weight,
# which is mostly well below 1, so the cloud looks dark and speckled; with a few more the
# transmittance is used up and the colour is right.
#
# The assertions: the covered area grows with the radius, and with K=1 the covered pixels
# are less than 60% as bright as with K=8.

# %%
radii = [0.5, 1.5, 3.0]
Ks = [1, 8]
fig, axes = plt.subplots(len(Ks), len(radii), figsize=(2.6 * len(radii), 2.6 * len(Ks)))
coverage, brightness = {}, {}
for i, K in enumerate(Ks):
    for j, rad in enumerate(radii):
        img = render(cloud, camera, dr.AlphaCompositor(background_color=white), rad, K)[0]
        rk = dr.PointsRasterizationSettings(image_size=S, radius=px_radius(rad),
                                            points_per_pixel=K)
        frag_rk = dr.PointsRasterizer(cameras=camera, raster_settings=rk)(cloud)
        covered = frag_rk.idx[0, ..., 0] >= 0
        coverage[(K, rad)] = float(covered.float().mean())
        brightness[(K, rad)] = float(img[covered].mean())
        axes[i, j].imshow(img.clamp(0, 1))
        axes[i, j].set_title(f"radius {rad} px, K={K}", fontsize=9)
        axes[i, j].axis("off")
fig.suptitle("alpha compositing: radius (columns) and points_per_pixel (rows)")
fig.tight_layout()
plt.show()
print("covered fraction of the image:", {k: round(v, 3) for k, v in coverage.items()})
print("mean brightness of covered pixels:", {k: round(v, 2) for k, v in brightness.items()})
assert coverage[(8, 0.5)] < coverage[(8, 1.5)] < coverage[(8, 3.0)], "coverage grows with r"
assert brightness[(1, 1.5)] < 0.6 * brightness[(8, 1.5)], "K=1 should darken the cloud"


def show_points(radius_px=1.5, points_per_pixel=8):
    """One alpha-composited render at a radius (pixels) and K, for the sliders below."""
    img = render(cloud, camera, dr.AlphaCompositor(background_color=white), radius_px,
                 points_per_pixel)[0]
    plt.figure(figsize=(3.5, 3.5))
    plt.imshow(img.clamp(0, 1))
    plt.title(f"radius {radius_px:.1f} px, K={points_per_pixel}", fontsize=9)
    plt.axis("off")
    plt.show()


if not STATIC:  # sliders in a live kernel; the grid above is the static version
    try:
        from ipywidgets import FloatSlider, IntSlider, interact
    except ImportError:
        interact = None
    if interact is not None:
        interact(show_points, radius_px=FloatSlider(min=0.25, max=5.0, step=0.25, value=1.5),
                 points_per_pixel=IntSlider(min=1, max=16, value=8))

# %% [markdown]
# ## 4. Fitting a point cloud to views of the cow
#
# Targets: the cow rendered unlit (colour = texture) on black from `N_VIEWS` cameras, with
# its silhouette. The cloud starts as random points in a small ball inside the cow, grey.
# Each step renders four random views with the alpha compositor, and compares colour and
# coverage (the composited alpha) with the targets; Adam moves the positions and colours.
# The coverage term is what pulls the blob outwards: a point on the blob's rim that covers
# pixels the target also covers lowers the error by moving out.

# %%
elev = torch.tensor([25.0, -25.0]).repeat_interleave(N_VIEWS // 2)
azim = (torch.linspace(0, 360, N_VIEWS // 2 + 1)[:-1].repeat(2)
        + torch.tensor([0.0, 180.0 / (N_VIEWS // 2)]).repeat_interleave(N_VIEWS // 2))
R_fit, T_fit = dr.look_at_view_transform(dist=2.7, elev=elev, azim=azim)
cams = dr.FoVPerspectiveCameras(R=R_fit, T=T_fit)
with torch.no_grad():
    meshes = cow.extend(N_VIEWS)
    mfrag = dr.MeshRasterizer(cams, dr.RasterizationSettings(image_size=S))(meshes)
    target_rgb = dr.MeshShader("phong", "hard", lights=dr.AmbientLights(), cameras=cams,
                               blend_params=dr.BlendParams(background_color=(0.0, 0.0, 0.0)))(
        mfrag, meshes)[..., :3]
    target_mask = (mfrag.pix_to_face[..., 0] >= 0).float()

surface = sample_points_from_meshes(cow, 5000, generator=gen)          # for the chamfer
direction = torch.nn.functional.normalize(torch.randn(N_FIT, 3), dim=1)
start = cow.verts_packed().mean(0) + direction * 0.3 * torch.rand(N_FIT, 1) ** (1 / 3)
pts = start.clone().requires_grad_(True)
cols = torch.full((N_FIT, 3), 0.5, requires_grad=True)
opt = torch.optim.Adam([{"params": [pts], "lr": 1e-2}, {"params": [cols], "lr": 3e-2}])
decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - 0.9 * i / ITERS)


def render_rgba(p, c, cameras):
    """RGBA (N, S, S, 4): colours over black, alpha = coverage."""
    feats = torch.cat([c, torch.ones_like(c[:, :1])], 1)
    return render(dr.Pointclouds(points=[p], features=[feats]), cameras, dr.AlphaCompositor())


def chamfer(p):
    return float(chamfer_distance(p.detach()[None], surface)[0])


history, chamfers = [], [(0, chamfer(pts))]
with torch.no_grad():
    before = render_rgba(pts, cols, cams[[0, 1]])
for it in range(ITERS):
    views = torch.randperm(N_VIEWS, generator=gen)[:4]
    out = render_rgba(pts, cols, cams[views.tolist()])
    loss = (((out[..., :3] - target_rgb[views]) ** 2).mean()
            + ((out[..., 3] - target_mask[views]) ** 2).mean())
    opt.zero_grad()
    loss.backward()
    opt.step()
    decay.step()
    with torch.no_grad():
        cols.clamp_(0, 1)
    history.append(loss.item())
    if (it + 1) % max(1, ITERS // 10) == 0:
        chamfers.append((it + 1, chamfer(pts)))
with torch.no_grad():
    after = render_rgba(pts, cols, cams[[0, 1]])

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].plot(history)
axes[0].set_xlabel("step")
axes[0].set_ylabel("colour + coverage MSE")
axes[0].set_title("image loss")
axes[1].plot(*zip(*chamfers, strict=True), "o-")
axes[1].set_xlabel("step")
axes[1].set_ylabel("chamfer to the cow's surface")
axes[1].set_title("3D error (never seen by the fit)")
fig.tight_layout()
plt.show()
show_row([before[0, ..., :3], before[1, ..., :3], after[0, ..., :3], after[1, ..., :3],
          target_rgb[0], target_rgb[1]],
         ["start, view 0", "start, view 1", "fitted, view 0", "fitted, view 1",
          "target, view 0", "target, view 1"], "before and after")

# %% [markdown]
# Points that no camera sees in front receive no gradient (alpha compositing gives the
# points behind the front ones almost no weight), so some of the start ball stays buried
# inside the cow, and the chamfer distance (which measures both directions: every cloud
# point to the surface and every surface sample to the cloud) keeps their error. Keeping
# only the points that some view shows in front removes them: that is how `diffrend
# fit-points` starts (from the surface of the views' visual hull).
#
# The assertions: the fitted cloud's chamfer distance falls below 40% of the start's, and
# below 20% after dropping the points no view shows in front.

# %%
with torch.no_grad():
    front = dr.PointsRasterizer(cameras=cams, raster_settings=dr.PointsRasterizationSettings(
        image_size=S, radius=px_radius(1.5), points_per_pixel=1))(
        dr.Pointclouds(points=[pts.detach()])).idx
seen = torch.zeros(N_FIT, dtype=torch.bool)
seen[front[front >= 0] % N_FIT] = True
c_start, c_end, c_seen = chamfers[0][1], chamfer(pts), chamfer(pts[seen])
print(f"chamfer: start {c_start:.4f}, fitted {c_end:.4f} ({c_end / c_start:.0%}), "
      f"front points only ({int(seen.sum())} of {N_FIT}) {c_seen:.4f} ({c_seen / c_start:.0%})")
assert c_end < 0.4 * c_start, "the fit did not bring the cloud to the surface"
assert c_seen < 0.2 * c_start, "the visible points are not on the surface"
