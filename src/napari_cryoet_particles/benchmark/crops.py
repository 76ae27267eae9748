"""Crops shared by every method (the original method's metric): 32² crops on a step-8 grid of
the three slices the original method picks by edge detection."""

import numpy as np
from scipy import ndimage

CROP = 32
CROP_STEP = 8
CROP_FRACTION = 0.1
N_SLICES = 3


def crop_grid(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slices, ys, xs): the slices the original method picks by edge detection, and the crop grid."""
    from napari_cryoet_particles.baselines.slices2d import _grid_centres, choose_slices

    slices = choose_slices(data, N_SLICES, 10, margin=CROP // 2)
    ys, xs = _grid_centres(data.shape[1:], CROP, CROP_STEP)
    return slices, ys, xs


def crop_centres(slices: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    return np.array([(z, y, x) for z in slices for y in ys for x in xs], dtype=float).reshape(-1, 3)


def window_means(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Mean of ``image`` over the CROP² window centred on each grid point (row-major)."""
    means = ndimage.uniform_filter(np.asarray(image, dtype=np.float64), size=CROP, mode="constant")
    return means[np.ix_(ys, xs)].ravel()


def grid_crops(maps: dict[int, tuple[np.ndarray, np.ndarray]], grid) -> dict[str, np.ndarray]:
    """Crop scores on the shared grid from per-slice (continuous map, binary call) pairs."""
    slices = grid["slices"].astype(int)
    ys, xs = grid["ys"].astype(int), grid["xs"].astype(int)
    score = np.concatenate([window_means(maps[int(z)][0], ys, xs) for z in slices])
    assignment = np.concatenate(
        [window_means(maps[int(z)][1], ys, xs) >= CROP_FRACTION for z in slices]
    )
    return {"score": score, "assignment": assignment, "centres": crop_centres(slices, ys, xs)}
