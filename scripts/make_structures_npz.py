"""Pack the 13 SHREC 2021 density maps into the package: ``data/structures_10A.npz``.

Reads ``tests/data/structures_10A/*.mrc`` (PolNet, Apache-2.0; 10 Å voxels, protein
positive, background 0), scales every map by the same factor (:data:`DENSITY_SCALE`, so that
densely packed protein is about 1), crops the empty padding and stores float16 arrays plus each
map's centre of mass (the point a particle's coordinates refer to). The licence file is copied
beside the archive.

    python scripts/make_structures_npz.py [--source DIR] [--out FILE]
"""

import argparse
import shutil
from pathlib import Path

import mrcfile
import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT / "tests" / "data" / "structures_10A"
DEFAULT_OUT = ROOT / "src" / "napari_cryoet_particles" / "data" / "structures_10A.npz"
LICENCE = "LICENSE-polnet-Apache-2.0.txt"
#: The maps saturate at about 200-250 inside protein; one common factor keeps relative masses.
DENSITY_SCALE = 1.0 / 200.0
#: Voxels below this (after scaling) are padding; the crop keeps everything above it.
CROP_LEVEL = 1e-3


def pack(source: Path, out: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    names = []
    for path in sorted(source.glob("*.mrc")):
        name = path.stem.upper()
        with mrcfile.open(path, permissive=True) as mrc:
            voxel = float(mrc.voxel_size.x)
            density = np.asarray(mrc.data, dtype=np.float64) * DENSITY_SCALE
        if abs(voxel - 10.0) > 1e-3:
            raise SystemExit(f"{path}: voxel size {voxel} Å, expected 10 Å")
        inside = np.argwhere(density > CROP_LEVEL)
        low = np.maximum(inside.min(axis=0) - 1, 0)
        high = np.minimum(inside.max(axis=0) + 2, density.shape)
        cropped = density[tuple(slice(a, b) for a, b in zip(low, high, strict=True))]
        centre = np.asarray(ndimage.center_of_mass(cropped))
        arrays[name] = cropped.astype(np.float16)
        arrays[f"{name}_centre"] = centre.astype(np.float32)
        names.append(name)
        print(
            f"{name}: {density.shape} -> {cropped.shape}, mass {cropped.sum():.0f}, centre {centre.round(2)}"
        )
    arrays["names"] = np.array(names)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    shutil.copyfile(source / LICENCE, out.parent / LICENCE)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {out.parent / LICENCE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    pack(args.source, args.out)


if __name__ == "__main__":
    main()
