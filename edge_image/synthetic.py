"""Raw region outputs shaped like a trained Tiny-YOLOv2's, for decoder benchmarks and tests.

A trained model is confident and sparse: almost every cell/anchor has a very negative
objectness logit; for each object the responsible cell's best anchor is confident, a few
neighbours are borderline, and their box terms agree (so NMS has real overlaps to remove).
"""

from __future__ import annotations

import numpy as np

from edge_image.contract.decode import RegionSpec


def trained_like_output(
    rng: np.random.Generator, spec: RegionSpec, *, grid: int = 13, objects: int = 3
) -> np.ndarray:
    """One ``(grid, grid, channels)`` float32 NHWC output with ``objects`` objects."""
    per = 5 + spec.classes
    out = rng.normal(0.0, 1.0, (grid, grid, spec.num, per)).astype(np.float32)
    out[..., 4] = rng.normal(-7.0, 1.5, (grid, grid, spec.num))
    for _ in range(objects):
        row, col = (int(v) for v in rng.integers(1, grid - 1, 2))
        anchor = int(rng.integers(spec.num))
        klass = int(rng.integers(spec.classes))
        tx, ty = rng.normal(0.0, 0.5, 2)
        tw, th = rng.normal(0.0, 0.3, 2)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                cell = out[row + dr, col + dc]
                # neighbours predict the same box (offset by the cell step)
                cell[:, 0] = tx - 2.0 * dc + rng.normal(0, 0.2, spec.num)
                cell[:, 1] = ty - 2.0 * dr + rng.normal(0, 0.2, spec.num)
                cell[:, 2] = tw + rng.normal(0, 0.2, spec.num)
                cell[:, 3] = th + rng.normal(0, 0.2, spec.num)
                cell[:, 4] = rng.normal(-2.0, 1.2, spec.num)
                cell[:, 5 + klass] += 5.0
        out[row, col, :, 4] = rng.normal(-0.5, 1.0, spec.num)
        out[row, col, anchor, 4] = rng.normal(2.5, 0.7)
    return out.reshape(grid, grid, spec.channels)
