"""Per (pixel, face) maths of the mesh rasterizer, as Numba device functions.

One pixel centre ``(px, py)`` against one screen-space triangle ``(x_i, y_i, z_i)``:
barycentrics (optionally perspective-corrected and clipped), interpolated depth, and the
squared distance to the triangle's 2D edges; plus the hand-written vector-Jacobian product of
those outputs. The formulas are PyTorch3D's (same epsilons), and :mod:`.reference` writes the
same maths in torch, so the two backends agree and autograd checks the backward.
Everything is computed in float64 whatever the input dtype.
"""

from __future__ import annotations

import numba as nb
import numpy as np

KEPS = 1e-8  # PyTorch3D's kEpsilon: added to areas, and the zero-area / behind-camera test
CLIP_EPS = 1e-5  # floor of the sum of clipped barycentrics


@nb.njit(cache=True, inline="always")
def face_area(x0, y0, x1, y1, x2, y2):
    """Twice the signed screen area of the face, positive when counter-clockwise in NDC."""
    return (x0 - x1) * (y2 - y1) - (y0 - y1) * (x2 - x1)


@nb.njit(cache=True, inline="always")
def edge_dist2(px, py, ax, ay, bx, by):
    """Squared distance from (px, py) to the segment a-b; returns (dist2, t) with t in [0, 1]."""
    ex = bx - ax
    ey = by - ay
    l2 = ex * ex + ey * ey
    if l2 <= KEPS:
        dx = px - bx
        dy = py - by
        return dx * dx + dy * dy, -1.0  # t < 0 flags the degenerate edge for the backward
    t = (ex * (px - ax) + ey * (py - ay)) / l2
    t = min(max(t, 0.0), 1.0)
    dx = px - (ax + t * ex)
    dy = py - (ay + t * ey)
    return dx * dx + dy * dy, t


@nb.njit(cache=True, inline="always")
def tri_dist2(px, py, x0, y0, x1, y1, x2, y2):
    """Squared distance from the point to the triangle's three edges (min over edges)."""
    d01, _ = edge_dist2(px, py, x0, y0, x1, y1)
    d02, _ = edge_dist2(px, py, x0, y0, x2, y2)
    d12, _ = edge_dist2(px, py, x1, y1, x2, y2)
    return min(min(d01, d02), d12)


@nb.njit(cache=True, inline="always")
def bary_depth(px, py, x0, y0, z0, x1, y1, z1, x2, y2, z2, persp, clip):
    """Barycentrics and depth of a pixel centre in a face.

    Returns (b0, b1, b2, inside, pz): b = output barycentrics (corrected, clipped as asked),
    inside = all perspective-corrected barycentrics > 0, pz = depth interpolated with b.
    """
    area = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0) + KEPS
    w0 = ((px - x1) * (y2 - y1) - (py - y1) * (x2 - x1)) / area
    w1 = ((px - x2) * (y0 - y2) - (py - y2) * (x0 - x2)) / area
    w2 = ((px - x0) * (y1 - y0) - (py - y0) * (x1 - x0)) / area
    if persp:
        t0 = w0 * z1 * z2
        t1 = w1 * z0 * z2
        t2 = w2 * z0 * z1
        den = t0 + t1 + t2
        w0 = t0 / den
        w1 = t1 / den
        w2 = t2 / den
    inside = w0 > 0.0 and w1 > 0.0 and w2 > 0.0
    if clip:
        c0 = max(w0, 0.0)
        c1 = max(w1, 0.0)
        c2 = max(w2, 0.0)
        s = max(c0 + c1 + c2, CLIP_EPS)
        w0 = c0 / s
        w1 = c1 / s
        w2 = c2 / s
    pz = w0 * z0 + w1 * z1 + w2 * z2
    return w0, w1, w2, inside, pz


@nb.njit(cache=True)
def fragment_vjp(px, py, v, gz, gb0, gb1, gb2, gd, persp, clip, out):
    """Add d(gz*zbuf + gb.bary + gd*dist)/d(face verts) into ``out`` (9,) (x0,y0,z0,x1,...).

    ``v`` is the (3, 3) face; the sign of ``dist`` (negative inside) is recomputed here.
    """
    x0 = np.float64(v[0, 0])
    y0 = np.float64(v[0, 1])
    z0 = np.float64(v[0, 2])
    x1 = np.float64(v[1, 0])
    y1 = np.float64(v[1, 1])
    z1 = np.float64(v[1, 2])
    x2 = np.float64(v[2, 0])
    y2 = np.float64(v[2, 1])
    z2 = np.float64(v[2, 2])
    # ---- forward recompute
    area = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0) + KEPS
    e0 = (px - x1) * (y2 - y1) - (py - y1) * (x2 - x1)
    e1 = (px - x2) * (y0 - y2) - (py - y2) * (x0 - x2)
    e2 = (px - x0) * (y1 - y0) - (py - y0) * (x1 - x0)
    w0 = e0 / area
    w1 = e1 / area
    w2 = e2 / area
    if persp:
        t0 = w0 * z1 * z2
        t1 = w1 * z0 * z2
        t2 = w2 * z0 * z1
        den = t0 + t1 + t2
        b0 = t0 / den
        b1 = t1 / den
        b2 = t2 / den
    else:
        t0 = t1 = t2 = den = 1.0
        b0 = w0
        b1 = w1
        b2 = w2
    inside = b0 > 0.0 and b1 > 0.0 and b2 > 0.0
    if clip:
        c0 = max(b0, 0.0)
        c1 = max(b1, 0.0)
        c2 = max(b2, 0.0)
        s_raw = c0 + c1 + c2
        s = max(s_raw, CLIP_EPS)
        o0 = c0 / s
        o1 = c1 / s
        o2 = c2 / s
    else:
        c0 = c1 = c2 = s_raw = s = 1.0
        o0 = b0
        o1 = b1
        o2 = b2
    # ---- depth: zbuf = o . z
    g0 = gb0 + gz * z0
    g1 = gb1 + gz * z1
    g2 = gb2 + gz * z2
    gz0 = gz * o0
    gz1 = gz * o1
    gz2 = gz * o2
    # ---- clip backward: o_i = c_i / s
    if clip:
        gs = 0.0
        if s_raw >= CLIP_EPS:
            gs = -(g0 * c0 + g1 * c1 + g2 * c2) / (s * s)
        g0 = (g0 / s + gs) if b0 >= 0.0 else 0.0
        g1 = (g1 / s + gs) if b1 >= 0.0 else 0.0
        g2 = (g2 / s + gs) if b2 >= 0.0 else 0.0
    # ---- perspective backward: b_i = t_i / den
    if persp:
        gden = -(g0 * t0 + g1 * t1 + g2 * t2) / (den * den)
        gt0 = g0 / den + gden
        gt1 = g1 / den + gden
        gt2 = g2 / den + gden
        g0 = gt0 * z1 * z2
        g1 = gt1 * z0 * z2
        g2 = gt2 * z0 * z1
        gz0 += gt1 * w1 * z2 + gt2 * w2 * z1
        gz1 += gt0 * w0 * z2 + gt2 * w2 * z0
        gz2 += gt0 * w0 * z1 + gt1 * w1 * z0
    # ---- screen barycentrics backward: w_i = e_i / area
    ge0 = g0 / area
    ge1 = g1 / area
    ge2 = g2 / area
    garea = -(g0 * e0 + g1 * e1 + g2 * e2) / (area * area)
    gx0 = gy0 = gx1 = gy1 = gx2 = gy2 = 0.0
    # e0 = E(p; v1, v2)
    gx1 += ge0 * (py - y2)
    gy1 += ge0 * (x2 - px)
    gx2 += ge0 * (y1 - py)
    gy2 += ge0 * (px - x1)
    # e1 = E(p; v2, v0)
    gx2 += ge1 * (py - y0)
    gy2 += ge1 * (x0 - px)
    gx0 += ge1 * (y2 - py)
    gy0 += ge1 * (px - x2)
    # e2 = E(p; v0, v1)
    gx0 += ge2 * (py - y1)
    gy0 += ge2 * (x1 - px)
    gx1 += ge2 * (y0 - py)
    gy1 += ge2 * (px - x0)
    # area = E(v2; v0, v1)
    gx0 += garea * (y2 - y1)
    gy0 += garea * (x1 - x2)
    gx1 += garea * (y0 - y2)
    gy1 += garea * (x2 - x0)
    gx2 += garea * (y1 - y0)
    gy2 += garea * (x0 - x1)
    # ---- distance backward (closest edge, first of e01, e02, e12 on ties)
    if gd != 0.0:
        gdd = -gd if inside else gd
        d01, t01 = edge_dist2(px, py, x0, y0, x1, y1)
        d02, t02 = edge_dist2(px, py, x0, y0, x2, y2)
        d12, t12 = edge_dist2(px, py, x1, y1, x2, y2)
        if d01 <= d02 and d01 <= d12:
            ia = 0
            ib = 1
            t = t01
        elif d02 <= d12:
            ia = 0
            ib = 2
            t = t02
        else:
            ia = 1
            ib = 2
            t = t12
        ax = np.float64(v[ia, 0])
        ay = np.float64(v[ia, 1])
        bx = np.float64(v[ib, 0])
        by = np.float64(v[ib, 1])
        if t < 0.0:  # degenerate edge: dist = |p - b|^2
            qx = bx - px
            qy = by - py
            wa = 0.0
            wb = 1.0
        else:
            qx = ax + t * (bx - ax) - px
            qy = ay + t * (by - ay) - py
            wa = 1.0 - t
            wb = t
        ga_x = 2.0 * gdd * wa * qx
        ga_y = 2.0 * gdd * wa * qy
        gb_x = 2.0 * gdd * wb * qx
        gb_y = 2.0 * gdd * wb * qy
        if ia == 0:
            gx0 += ga_x
            gy0 += ga_y
        else:
            gx1 += ga_x
            gy1 += ga_y
        if ib == 1:
            gx1 += gb_x
            gy1 += gb_y
        else:
            gx2 += gb_x
            gy2 += gb_y
    out[0] += gx0
    out[1] += gy0
    out[2] += gz0
    out[3] += gx1
    out[4] += gy1
    out[5] += gz1
    out[6] += gx2
    out[7] += gy2
    out[8] += gz2
