"""Training clips for the video codec: real clips from folders/videos, and clips synthesized from photos.

Real clips: every folder under the data root that holds image frames (e.g. Vimeo-90k's
``sequences/<seq>/<clip>/im1.png...``) and every video file there (.y4m, .mp4...), cut into windows
of ``length`` consecutive frames, each at a random aligned crop (with flips).

Synthetic clips: a photo seen by a moving camera — per clip a random pan (up to ``max_shift`` pixels
a frame, small speeds more likely), zoom (up to ±2% a frame), rotation (up to ±1° a frame) and brightness drift (up to ±2% a
frame), rendered with bilinear resampling. They teach the temporal prior how latents move.
:func:`with_moving_objects` adds objects crossing such a clip (several motions, occlusions): the
motion-compensated codec's tools are chosen on those too (``benchmarks/video_mc_tools.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuralcodec.errors import InputError
from neuralcodec.media.images import LOSSLESS_SUFFIXES, list_images, read_rgb
from neuralcodec.media.video import VIDEO_SUFFIXES, open_video


def _frame_folders(root: Path) -> list[Path]:
    folders = {p.parent for p in root.rglob("*") if p.suffix.lower() in LOSSLESS_SUFFIXES and p.is_file()}
    return sorted(folders)


def real_clips(root: str | Path, length: int, crop: int, crops_per_window: int, seed: int = 0) -> Iterator[np.ndarray]:
    """(length, crop, crop, 3) uint8 windows of the clips under ``root`` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"clip folder not found: {root}")
    sources = _frame_folders(root) + sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not sources:
        raise InputError(f"no frame folders or videos under {root}")
    rng = np.random.default_rng(seed)
    for source in sources:
        with open_video(source) as reader:
            frames = np.stack(list(reader))
        if len(frames) < length or min(frames.shape[1:3]) < crop:
            continue
        for start in range(len(frames) - length + 1):
            for _ in range(crops_per_window):
                yield _random_crop(frames[start:start + length], crop, rng)


def _random_crop(frames: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    top = rng.integers(frames.shape[1] - crop + 1)
    left = rng.integers(frames.shape[2] - crop + 1)
    window = frames[:, top:top + crop, left:left + crop]
    if rng.random() < 0.5:
        window = window[:, :, ::-1]
    return np.ascontiguousarray(window)


def synthetic_clip(photo: np.ndarray, length: int, crop: int, rng: np.random.Generator,
                   max_shift: float = 8.0) -> np.ndarray | None:
    """A (length, crop, crop, 3) uint8 clip of ``photo`` under a random smooth camera motion, or None
    when the photo is too small for the motion drawn."""
    height, width = photo.shape[:2]
    direction = rng.uniform(0, 2 * math.pi)
    velocity = max_shift * rng.random() ** 2 * np.array([math.cos(direction), math.sin(direction)])  # mostly slow
    zoom = rng.uniform(-0.02, 0.02)
    spin = math.radians(rng.uniform(-1.0, 1.0))
    drift = rng.uniform(-0.02, 0.02)
    reach = crop * 0.75 * (1 + abs(zoom) * length) + np.abs(velocity).max() * length + 2
    if 2 * reach >= min(height, width):
        return None
    center = np.array([rng.uniform(reach, width - reach), rng.uniform(reach, height - reach)])
    offsets = torch.arange(crop, dtype=torch.float64) - (crop - 1) / 2
    gy, gx = torch.meshgrid(offsets, offsets, indexing="ij")
    source = torch.from_numpy(np.array(photo, dtype=np.float64)).permute(2, 0, 1)[None]
    frames = []
    for t in range(length):
        scale, angle = (1 + zoom) ** t, spin * t
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        cx, cy = center + velocity * t
        x = cx + cos * gx - sin * gy
        y = cy + sin * gx + cos * gy
        frame = _read_at(source, y, x) * (1 + drift) ** t
        frames.append(frame.clamp(0, 255).round().byte().permute(1, 2, 0).numpy())
    return np.stack(frames)


def synthetic_clips(photos_root: str | Path, count: int, length: int, crop: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``count`` synthetic clips from the photos under ``photos_root`` (also at half size when large)."""
    photos = []
    for path in list_images(photos_root):
        photo = read_rgb(path)
        photos.append(photo)
        if min(photo.shape[:2]) >= 4 * crop:
            half = torch.from_numpy(photo).permute(2, 0, 1)[None].float()
            half = F.interpolate(half, scale_factor=0.5, mode="area")[0].round().byte().permute(1, 2, 0).numpy()
            photos.append(half)
    rng = np.random.default_rng(seed)
    made = tries = 0
    while made < count:
        tries += 1
        if tries > 20 * count + 100:
            raise InputError(f"photos under {photos_root} are too small for {crop}x{crop} synthetic clips")
        clip = synthetic_clip(photos[rng.integers(len(photos))], length, crop, rng)
        if clip is not None:
            made += 1
            yield clip


def with_moving_objects(clip: np.ndarray, photos: list[np.ndarray], count: int, rng: np.random.Generator,
                        max_speed: float = 6.0) -> np.ndarray:
    """``clip`` (T, H, W, 3) uint8 with ``count`` opaque objects pasted over it, each an ellipse cut from a
    random photo (a fifth to a half of the clip's side across) moving in a straight line at its own speed
    (up to ``max_speed`` pixels a frame) with anti-aliased edges: several motions and occlusions in one
    clip, as in scenes with people, unlike a camera motion alone."""
    length, height, width = clip.shape[:3]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = clip.astype(np.float64)
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        source_image = torch.from_numpy(np.array(photo, dtype=np.float64)).permute(2, 0, 1)[None]
        radii = rng.uniform(0.1, 0.25, size=2) * np.array([height, width])
        if min(photo.shape[:2]) <= 2 * radii.max() + 2:
            continue
        centre = np.array([rng.uniform(radii[0], photo.shape[0] - radii[0] - 1),
                           rng.uniform(radii[1], photo.shape[1] - radii[1] - 1)])
        start = np.array([rng.uniform(0, height), rng.uniform(0, width)])
        direction = rng.uniform(0, 2 * math.pi)
        velocity = max_speed * rng.uniform(0.2, 1.0) * np.array([math.sin(direction), math.cos(direction)])
        for t in range(length):
            dy, dx = ys - (start[0] + velocity[0] * t), xs - (start[1] + velocity[1] * t)
            distance = np.sqrt((dy / radii[0]) ** 2 + (dx / radii[1]) ** 2)
            cover = np.clip((1 - distance) * radii.min() + 0.5, 0, 1)[..., None]  # one-pixel soft edge
            texture = _read_at(source_image, torch.from_numpy(centre[0] + dy), torch.from_numpy(centre[1] + dx),
                               "border").permute(1, 2, 0).numpy()
            frames[t] = cover * texture + (1 - cover) * frames[t]
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def _read_at(source: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """The (1, C, H, W) image ``source`` read bilinearly at real pixel coordinates ``ys``, ``xs`` (h, w):
    (C, h, w); outside the image ``padding`` ("zeros", or "border": edges replicated)."""
    height, width = source.shape[-2:]
    grid = torch.stack([(2 * xs + 1) / width - 1, (2 * ys + 1) / height - 1], dim=-1)[None]
    return F.grid_sample(source, grid, mode="bilinear", padding_mode=padding, align_corners=False)[0]
