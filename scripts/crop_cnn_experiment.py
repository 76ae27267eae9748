"""Session 16's experiment, kept to be built on: a supervised 3D crop CNN (simulated labels of
the validation tomograms, like the pick ranker's) as a second opinion beside the ranker, measured
on the held-out families' test tomograms (docs/detection.md, "Tried in session 16").

    PYTHONPATH=src:scripts python scripts/crop_cnn_experiment.py crops WORK crops.npz
    SPECTRAL=1 PYTHONPATH=src:scripts python scripts/crop_cnn_experiment.py train crops.npz net.pt
    PYTHONPATH=src:scripts python scripts/crop_cnn_experiment.py eval WORK net.pt 1.0 sirt-like,dose-physical

WORK holds the simulations of scripts/score_search.py (made on first use). ``crops`` takes about
3 minutes, ``train`` about 13 (6 epochs, 2 cores), ``eval`` about 17 s a tomogram; ``eval`` patches
the ranker's table and classifier in this process only. SPECTRAL=1 trains with the spectral
augmentation (the variant that held on the held-out families).
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
#: Half the crop edge (working voxels).
HALF = 8
SPECTRAL = bool(os.environ.get("SPECTRAL"))


def whole(work) -> np.ndarray:
    box = tuple(slice(0, n) for n in work.shape)
    data = -work.read(box)  # particles bright
    return np.pad(data, HALF, mode="constant")


def crops_at(padded: np.ndarray, zyx: np.ndarray) -> np.ndarray:
    points = np.rint(np.asarray(zyx, float)).astype(int) + HALF
    upper = np.array(padded.shape) - HALF - 1
    points = np.clip(points, HALF, upper)
    out = np.empty((len(points), 2 * HALF, 2 * HALF, 2 * HALF), np.float16)
    for i, (z, y, x) in enumerate(points):
        out[i] = padded[z - HALF : z + HALF, y - HALF : y + HALF, x - HALF : x + HALF]
    return out


def make_crops(work_dir: Path, out: Path) -> None:
    from score_search import tomograms
    from train_pick_ranker import floor_run

    xs, ys, ids = [], [], []
    for k, (name, (folder, _)) in enumerate(tomograms(work_dir, []).items()):
        run = floor_run(folder)
        label = run.is_particle
        zyx = run.work.from_input(run.result.picks.zyx)[run.counted]
        crops = crops_at(whole(run.work), zyx)
        xs.append(crops)
        ys.append(label)
        ids.append(np.full(len(label), k))
        print(name, len(label), int(label.sum()), flush=True)
    np.savez(out, x=np.concatenate(xs), y=np.concatenate(ys), tomo=np.concatenate(ids))


def net() -> nn.Module:
    def block(a, b):
        return [nn.Conv3d(a, b, 3, padding=1), nn.BatchNorm3d(b), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(1, 16),
        *block(16, 16),
        nn.MaxPool3d(2),
        *block(16, 32),
        *block(32, 32),
        nn.MaxPool3d(2),
        *block(32, 64),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(64, 1),
    )


_F = None


def spectral(x: torch.Tensor) -> torch.Tensor:
    """Each crop's spectrum tilted by a random power of the frequency (|f|^beta, beta in
    [-1, 1]), then rescaled to its own former spread: another reconstruction filter or noise
    colour, chosen a priori, not on any held-out family."""
    global _F
    if _F is None:
        f = torch.fft.fftfreq(2 * HALF)
        fz, fy, fx = torch.meshgrid(f, f, f, indexing="ij")
        _F = torch.sqrt(fz**2 + fy**2 + fx**2).clamp(min=1.0 / (2 * HALF)) / 0.25
    beta = (torch.rand(len(x)) * 2 - 1).view(-1, 1, 1, 1, 1)
    spread = x.std(dim=(2, 3, 4), keepdim=True)
    out = torch.fft.ifftn(torch.fft.fftn(x, dim=(2, 3, 4)) * _F**beta, dim=(2, 3, 4)).real
    out = out * spread / out.std(dim=(2, 3, 4), keepdim=True).clamp(min=1e-6)
    noise = torch.rand(len(x)).view(-1, 1, 1, 1, 1) * 0.5 * spread
    return out + noise * torch.randn_like(out)


def augment(x: torch.Tensor) -> torch.Tensor:
    if SPECTRAL:
        x = spectral(x)
    for axis in (2, 3, 4):
        if torch.rand(()) < 0.5:
            x = torch.flip(x, (axis,))
    k = int(torch.randint(0, 4, ()))
    return torch.rot90(x, k, (3, 4))  # in the x-y plane: the missing wedge stays along z


def train(crops: Path, out: Path, epochs: int = 6) -> None:
    torch.manual_seed(0)
    data = np.load(crops)
    x = torch.from_numpy(data["x"].astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(data["y"].astype(np.float32))
    model = net()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    n = len(x)
    for epoch in range(epochs):
        t0 = time.time()
        order = torch.randperm(n)
        total = 0.0
        model.train()
        for i in range(0, n, 128):
            idx = order[i : i + 128]
            logits = model(augment(x[idx])).squeeze(1)
            loss = loss_fn(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        print(f"epoch {epoch} loss {total / n:.4f} {time.time() - t0:.0f}s", flush=True)
    torch.save(model.state_dict(), out)


def evaluate(work_dir: Path, weights: Path, w: float, names: list[str]) -> None:
    from score_search import scored, tomograms

    import napari_cryoet_particles.detect.ranker as ranker
    import napari_cryoet_particles.detect.scoring as scoring
    from napari_cryoet_particles.detect import DetectionConfig, detect_particles
    from napari_cryoet_particles.evaluate.report import load_truth
    from napari_cryoet_particles.io import read_shrec_folder

    model = net()
    model.load_state_dict(torch.load(weights))
    model.eval()
    base = ranker.shipped_ranker()
    original_table = scoring.ranker_table

    def table_with_cnn(work, zyx, strength, radius, profiles, threshold, threads=1):
        table = original_table(work, zyx, strength, radius, profiles, threshold, threads)
        crops = torch.from_numpy(crops_at(whole(work), zyx).astype(np.float32)).unsqueeze(1)
        with torch.no_grad():
            logit = torch.cat(
                [model(crops[i : i + 512]).squeeze(1) for i in range(0, len(crops), 512)]
            ).numpy()
        return np.column_stack([table, logit])

    class Combined:
        training_prior_ = base.training_prior_

        def predict_proba(self, table):
            p = np.clip(base.predict_proba(table[:, :-1])[:, 1], 1e-6, 1 - 1e-6)
            odds = (np.log(p / (1 - p)) + w * table[:, -1]) / (1 + w)
            q = 1 / (1 + np.exp(-odds))
            return np.column_stack([1 - q, q])

    scoring.ranker_table = table_with_cnn
    ranker.shipped_ranker = lambda: Combined()
    families = [n for n in names if not n.startswith(("val", "cell1"))]
    folders = tomograms(work_dir, families)
    for name in names:
        folder = folders[name][0]
        data = read_shrec_folder(folder)
        t0 = time.time()
        result = detect_particles(
            data.tomogram, None, DetectionConfig(keep_score_map=False, groups=0)
        )
        report = scored(load_truth(folder), result.picks)
        row = {
            "w": w,
            "name": name,
            "picks": len(result.picks),
            "f1": round(float(report.f1), 4),
            "s": round(time.time() - t0, 1),
        }
        with (work_dir / f"crop_cnn-{Path(weights).stem}.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(row, flush=True)


if __name__ == "__main__":
    torch.set_num_threads(2)
    if sys.argv[1] == "crops":
        make_crops(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1] == "train":
        train(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        evaluate(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]), sys.argv[5].split(","))
