"""Synthetic minutiae templates for large-gallery benchmarks, made from real extracted templates.

Extracting 100,000 images is too slow, so the transforms act on the minutiae directly:

* a new finger (``new_finger``): two real templates cut along a random line through their centres and
  joined (a chimera), mirrored with probability 1/2, bent by a strong smooth random displacement field
  (tens of pixels, wavelengths of one to two print widths; minutia directions follow the field's
  Jacobian), with a tenth of the minutiae dropped and a tenth spurious ones added. Local
  neighbourhoods and the global layout both change, so it no longer matches its sources (the
  benchmark reports its scores against the real probes next to real impostor scores).
* an impression of a finger (``impression``): the acquisition transforms of ``distortion.py`` on
  minutiae: rotation, translation, cropping to a partial print and a mild elastic distortion.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Rng = np.random.Generator


Field = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def _field(rng: Rng, amplitude: float, wavelength: tuple[float, float], waves: int = 3) -> Field:
    """A smooth displacement field (dx, dy) = sum of random plane waves, and its Jacobian."""
    k = rng.uniform(2 * math.pi / wavelength[1], 2 * math.pi / wavelength[0], (waves, 2))
    phi = rng.uniform(0, 2 * math.pi, (waves, 2))
    direction = rng.uniform(0, 2 * math.pi, (waves, 2))
    amp = amplitude * rng.uniform(0.5, 1.0, (waves, 2)) / math.sqrt(waves)
    ux, uy = np.cos(direction), np.sin(direction)

    def apply(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                     np.ndarray, np.ndarray]:
        arg = k[None] * (x[:, None, None] * ux[None] + y[:, None, None] * uy[None]) + phi[None]  # (n, waves, 2)
        d = (amp[None] * np.sin(arg)).sum(1)
        g = amp[None] * k[None] * np.cos(arg)  # derivative along each wave's direction
        jxx, jxy = (g[:, :, 0] * ux[None, :, 0]).sum(1), (g[:, :, 0] * uy[None, :, 0]).sum(1)
        jyx, jyy = (g[:, :, 1] * ux[None, :, 1]).sum(1), (g[:, :, 1] * uy[None, :, 1]).sum(1)
        return d[:, 0], d[:, 1], jxx, jxy, jyx, jyy

    return apply


def warp(m: np.ndarray, rng: Rng, amplitude: float, wavelength: tuple[float, float]) -> np.ndarray:
    out = m.copy()
    dx, dy, jxx, jxy, jyx, jyy = _field(rng, amplitude, wavelength)(m[:, 0], m[:, 1])
    c, s = np.cos(m[:, 2]), np.sin(m[:, 2])
    out[:, 0] += dx
    out[:, 1] += dy
    out[:, 2] = np.arctan2(s + jyx * c + jyy * s, c + jxx * c + jxy * s)  # direction through (I + J)
    return out


def rigid(m: np.ndarray, angle: float, tx: float, ty: float) -> np.ndarray:
    out = m.copy()
    cx, cy = m[:, 0].mean(), m[:, 1].mean()
    c, s = math.cos(angle), math.sin(angle)
    x, y = m[:, 0] - cx, m[:, 1] - cy
    out[:, 0] = c * x - s * y + cx + tx
    out[:, 1] = s * x + c * y + cy + ty
    out[:, 2] = np.angle(np.exp(1j * (m[:, 2] + angle)))
    return out


def _centred(m: np.ndarray) -> np.ndarray:
    out = m.copy()
    out[:, :2] -= m[:, :2].mean(0)
    return out


def new_finger(a: np.ndarray, b: np.ndarray, rng: Rng) -> np.ndarray:
    """A template of a finger that is none of its two sources (see module doc)."""
    a, b = _centred(a), _centred(rigid(b, rng.uniform(-math.pi, math.pi), 0, 0))
    t = rng.uniform(0, math.pi)
    normal = np.array([math.cos(t), math.sin(t)])
    m = np.concatenate([a[a[:, :2] @ normal >= 0], b[b[:, :2] @ normal < 0]])
    if rng.random() < 0.5:
        m[:, 0] = -m[:, 0]
        m[:, 2] = np.angle(np.exp(1j * (math.pi - m[:, 2])))
    m = warp(m, rng, amplitude=rng.uniform(25, 40), wavelength=(150, 300))
    m = m[rng.random(len(m)) >= 1 / 10]
    extra = max(1, len(m) // 10)
    lo, hi = m[:, :2].min(0), m[:, :2].max(0)
    spurious = np.column_stack([rng.uniform(lo[0], hi[0], extra), rng.uniform(lo[1], hi[1], extra),
                                rng.uniform(-math.pi, math.pi, extra), rng.choice(m[:, 3], extra),
                                rng.uniform(20, 60, extra)])
    m = np.concatenate([m, spurious])
    m[:, :2] += 30.0 - m[:, :2].min(0)  # positive coordinates, like an image's
    return m.astype(np.float32)


def impression(m: np.ndarray, rng: Rng, keep: tuple[float, float] = (0.85, 1.0)) -> np.ndarray:
    """One acquisition: rotation up to 35 degrees, translation, a partial crop, mild elastic distortion."""
    out = rigid(m, math.radians(rng.uniform(-35, 35)), rng.uniform(-40, 40), rng.uniform(-40, 40))
    out = warp(out, rng, amplitude=rng.uniform(2, 6), wavelength=(200, 400))
    lo, hi = out[:, :2].min(0), out[:, :2].max(0)
    frac = rng.uniform(*keep, 2)
    start = lo + rng.random(2) * (1 - frac) * (hi - lo)
    inside = np.all((out[:, :2] >= start) & (out[:, :2] <= start + frac * (hi - lo)), axis=1)
    if inside.sum() >= 12:
        out = out[inside]
    out[:, :2] -= out[:, :2].min(0) - 20.0
    return out.astype(np.float32)
