"""Per-class textures for the synthetic scene generator.

A texture is evaluated on a box of pixel centres, ``ys`` (h, 1) and ``xs`` (1, w) float32 canvas
coordinates, and returns linear RGB (h, w, 3) float32, nominally in 0..1. Each class has a colour
distribution *and* a characteristic pattern, chosen so that colour alone is ambiguous (grass and
foliage are both green, overcast sky, road and grey walls are all grey) but the local pattern is
not: smooth gradients with soft clouds (sky), fine grain with short vertical blades (grass), fine
low-contrast grain with speckles (road), a regular window grid (building), coarse leafy blobs
(tree), cylindrical shading (pole), glossy saturated paint (sign; its border / fill / symbol rings
are drawn by ``synthetic_objects.draw_sign``), periodic planks or slanted bands (fence).
"""
from __future__ import annotations

import numpy as np

Colour = np.ndarray  # (3,) float32 linear RGB in 0..1


def rgb(r: float, g: float, b: float) -> Colour:
    return np.array([r, g, b], dtype=np.float32)


def jitter_colour(rng: np.random.Generator, base: Colour, hue: float, brightness: float) -> Colour:
    """``base`` with per-channel jitter ±``hue`` (relative) and a brightness factor ±``brightness``."""
    channel = 1.0 + hue * rng.uniform(-1.0, 1.0, 3)
    gain = 1.0 + brightness * rng.uniform(-1.0, 1.0)
    return np.clip(base * channel * gain, 0.0, 1.0).astype(np.float32)


def smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def value_noise(
    rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, cell_y: float, cell_x: float
) -> np.ndarray:
    """Smooth random field (h, w) float32 in 0..1 with features about ``cell_y`` × ``cell_x`` px."""
    gy = (ys[:, 0] - ys[0, 0]) / cell_y + rng.uniform(0.0, 1.0)
    gx = (xs[0, :] - xs[0, 0]) / cell_x + rng.uniform(0.0, 1.0)
    iy, ix = gy.astype(np.int64), gx.astype(np.int64)
    grid = rng.random((int(iy[-1]) + 2, int(ix[-1]) + 2), dtype=np.float32)
    fx = smoothstep((gx - ix).astype(np.float32))[None, :]
    fy = smoothstep((gy - iy).astype(np.float32))[:, None]
    along_x = grid[:, ix] * (1.0 - fx) + grid[:, ix + 1] * fx
    return along_x[iy] * (1.0 - fy) + along_x[iy + 1] * fy


def grain(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Independent per-pixel standard normal noise (h, w) float32."""
    return rng.standard_normal((ys.shape[0], xs.shape[1]), dtype=np.float32)


def shade(colour: Colour, brightness: np.ndarray) -> np.ndarray:
    """``colour`` (3,) times a brightness field (h, w) → (h, w, 3)."""
    return brightness[:, :, None] * colour[None, None, :]


def flat_texture(
    rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, colour: Colour, noise: float
) -> np.ndarray:
    """A uniform colour with a little per-pixel grain."""
    return shade(colour, 1.0 + noise * grain(rng, ys, xs))


def sky_texture(
    rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray,
    top: Colour, bottom: Colour, horizon_y: float, clouds: float, cloud_colour: Colour,
) -> np.ndarray:
    """Vertical gradient ``top`` → ``bottom`` at ``horizon_y`` with soft wide clouds (coverage 0..1)."""
    t = np.clip(ys / max(horizon_y, 1.0), 0.0, 1.0)[:, :, None]
    sky = top * (1.0 - t) + bottom * t
    noise = value_noise(rng, ys, xs, 14.0, 45.0) * 0.7 + value_noise(rng, ys, xs, 5.0, 14.0) * 0.3
    cover = np.clip((noise - (1.0 - clouds)) * 3.0, 0.0, 1.0)[:, :, None]
    return sky * (1.0 - cover) + cloud_colour * cover


def grass_texture(
    rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, base: Colour, roughness: float
) -> np.ndarray:
    """Fine grain plus short vertical blades: high-frequency, mostly vertical structure."""
    blades = value_noise(rng, ys, xs, 5.0, 1.3) - 0.5
    clumps = value_noise(rng, ys, xs, 2.0, 2.0) - 0.5
    patches = value_noise(rng, ys, xs, 30.0, 50.0) - 0.5
    light = 1.0 + roughness * (0.9 * blades + 0.6 * clumps + 0.5 * grain(rng, ys, xs)) + 0.25 * patches
    yellowing = (0.15 * patches)[:, :, None] * rgb(1.0, 0.6, -0.6)
    return shade(base, light) + yellowing * base


def road_texture(
    rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, base: Colour, wear: float
) -> np.ndarray:
    """Asphalt: fine low-contrast grain, sparse light speckles and large faint wear patches."""
    speckles = (rng.random((ys.shape[0], xs.shape[1]), dtype=np.float32) > 0.97) * 0.18
    patches = value_noise(rng, ys, xs, 25.0, 40.0) - 0.5
    light = 1.0 + 0.05 * grain(rng, ys, xs) + speckles + wear * patches
    return shade(base, light)


def building_texture(
    rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray,
    wall: Colour, window: Colour, origin: tuple[float, float], period: tuple[float, float],
    fraction: tuple[float, float], bricks: bool,
) -> np.ndarray:
    """A wall with a regular grid of windows (period and window fraction per building).

    origin: (y, x) of the grid's first window corner; period: (py, px) px; fraction: window
    size relative to the period. Brick walls add thin mortar lines every 3 px.
    """
    fy = np.modf((ys - origin[0]) / period[0] + 16.0)[0]
    fx = np.modf((xs - origin[1]) / period[1] + 16.0)[0]
    in_window = (fy < fraction[0]) & (fx < fraction[1]) & (ys > origin[0]) & (xs > origin[1])
    wall_light = 1.0 + 0.03 * grain(rng, ys, xs)
    if bricks:
        wall_light = wall_light - 0.12 * (np.modf(ys / 3.0)[0] < 0.34)
    glass_light = 0.8 + 0.5 * (fy / max(fraction[0], 1e-3)) + 0.03 * grain(rng, ys, xs)
    return np.where(in_window[:, :, None], shade(window, glass_light), shade(wall, wall_light))


def foliage_texture(
    rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, dark: Colour, light: Colour, cell: float
) -> np.ndarray:
    """Leafy canopy: coarse blobs of light and dark leaves with small dark holes."""
    blobs = value_noise(rng, ys, xs, cell, cell)
    leaves = value_noise(rng, ys, xs, cell * 0.35, cell * 0.35)
    t = np.clip(0.65 * blobs + 0.45 * leaves - 0.05, 0.0, 1.0) ** 1.4
    colour = dark * (1.0 - t[:, :, None]) + light * t[:, :, None]
    return colour * (1.0 + 0.04 * grain(rng, ys, xs))[:, :, None]


def bark_texture(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, base: Colour) -> np.ndarray:
    """Tree trunk: vertical streaks."""
    streaks = value_noise(rng, ys, xs, 9.0, 1.2) - 0.5
    return shade(base, 1.0 + 0.5 * streaks + 0.04 * grain(rng, ys, xs))


def pole_texture(
    rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, base: Colour, left: float, width: float
) -> np.ndarray:
    """A metal cylinder lit from one side: brightness varies across its width, not along it."""
    across = np.clip((xs - left) / max(width, 1.0), 0.0, 1.0)
    light = 0.75 + 0.5 * np.sin(np.pi * across) + 0.02 * grain(rng, ys, xs)
    return shade(base, np.broadcast_to(light, (ys.shape[0], xs.shape[1])))


def sign_texture(
    rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray,
    colour: Colour, centre: tuple[float, float], radius: float,
) -> np.ndarray:
    """Glossy painted metal: a soft radial highlight on ``colour``."""
    distance = np.hypot(ys - (centre[0] - 0.3 * radius), xs - (centre[1] - 0.3 * radius)) / max(radius, 1.0)
    light = 1.15 - 0.25 * np.clip(distance, 0.0, 1.5) + 0.02 * grain(rng, ys, xs)
    return shade(colour, light)


def fence_texture(
    rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray,
    plank: Colour, gap: Colour, period: float, duty: float, slant: float,
) -> np.ndarray:
    """Periodic planks: bands of ``plank`` and ``gap`` with ``period`` px, tilted by ``slant`` (dx/dy)."""
    phase = np.modf((xs + slant * ys) / period + 64.0)[0]
    is_plank = phase < duty
    light = 1.0 + 0.05 * grain(rng, ys, xs) + 0.15 * (value_noise(rng, ys, xs, 12.0, 2.0) - 0.5)
    return np.where(is_plank[:, :, None], shade(plank, light), shade(gap, light))
