"""``cryoet-particles refine``: learn from curated picks on a tiny blob tomogram; bad input."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

import napari_cryoet_particles.detect.refine as refine_module
from napari_cryoet_particles.cli import main
from napari_cryoet_particles.io import write_tomogram

SHAPE = (24, 48, 48)
#: A detected pick within this many voxels of a blob's centre is on it.
REACH = 3.0


@dataclass
class Curation:
    tomogram: Path
    model: Path
    picks: Path
    curated: pd.DataFrame
    centres: np.ndarray


def blob_tomogram(seed: int = 0, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Dark Gaussian blobs at least 8 voxels apart in noise, and their centres (zyx)."""
    rng = np.random.default_rng(seed)
    centres: list[np.ndarray] = []
    while len(centres) < n:
        centre = rng.uniform(5, np.asarray(SHAPE) - 5)
        if all(np.linalg.norm(centre - other) >= 8 for other in centres):
            centres.append(centre)
    grid = np.indices(SHAPE, dtype=np.float32)
    volume = rng.normal(0, 0.3, SHAPE).astype(np.float32)
    for centre in centres:
        d2 = sum((grid[a] - centre[a]) ** 2 for a in range(3))
        volume -= np.exp(-d2 / 8).astype(np.float32)
    return volume, np.array(centres)


def oracle_marks(table: pd.DataFrame, centres: np.ndarray, n: int = 3) -> pd.DataFrame:
    """The picks a user would look at first (highest score): the first ``n`` on a blob accepted,
    the first ``n`` on none rejected, as the truth says; the rest stay auto."""
    distance, _ = cKDTree(centres).query(table[["z", "y", "x"]].to_numpy())
    order = np.argsort(-table["score"].to_numpy(), kind="stable")
    hits = [i for i in order if distance[i] <= REACH][:n]
    misses = [i for i in order if distance[i] > REACH][:n]
    curated = table.copy()
    curated["status"] = "auto"
    curated.loc[hits, "status"] = "accepted"
    curated.loc[misses, "status"] = "rejected"
    return curated


@pytest.fixture(scope="module")
def curation(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Curation:
    """A detection run on a blob tomogram (threshold low, so it has misses to reject; the edges
    kept, where most of this small volume's misses lie), marked."""
    folder = tmp_path_factory.mktemp("refine")
    volume, centres = blob_tomogram()
    tomogram = write_tomogram(folder / "tomo.mrc", volume, 10.0)
    picks = folder / "picks.csv"
    detect = ["detect", str(tomogram), "--out", str(picks), "--model", str(tiny_model)]
    assert (
        main(
            [
                *detect,
                "--diameter",
                "4",
                "--threshold",
                "0.05",
                "--threads",
                "1",
                "--quiet",
                "--keep-edges",
            ]
        )
        == 0
    )
    curated = oracle_marks(pd.read_csv(picks), centres)
    assert (curated["status"] == "accepted").sum() == 3
    assert (curated["status"] == "rejected").sum() == 3
    return Curation(tomogram, tiny_model, picks, curated, centres)


def refine_args(curation: Curation, curated: Path, out: Path, *extra: str) -> list[str]:
    return [
        "refine",
        str(curation.tomogram),
        "--picks",
        str(curated),
        "--out",
        str(out),
        "--model",
        str(curation.model),
        "--diameter",
        "4",
        "--threads",
        "1",
        "--quiet",
        "--keep-edges",  # the toy volume is small: its misses to reject lie near the faces
        *extra,
    ]


def write_curated(curation: Curation, folder: Path, table: pd.DataFrame | None = None) -> Path:
    path = folder / "curated.csv"
    (curation.curated if table is None else table).to_csv(path, index=False)
    return path


def rows_with_status(table: pd.DataFrame, status: str) -> np.ndarray:
    return table.loc[table["status"] == status, ["x", "y", "z"]].to_numpy(dtype=float)


def test_refine_keeps_every_mark_with_its_status(
    curation: Curation, tmp_path: Path, capsys
) -> None:
    curated = write_curated(curation, tmp_path)
    out = tmp_path / "refined.csv"
    assert main(refine_args(curation, curated, out)) == 0
    assert "3 accepted, 3 rejected kept" in capsys.readouterr().out
    refined = pd.read_csv(out)
    assert set(refined["status"]) <= {"auto", "accepted", "rejected"}
    for status in ("accepted", "rejected"):
        marked = rows_with_status(curation.curated, status)
        kept = rows_with_status(refined, status)
        assert len(kept) == len(marked) == 3
        distance, _ = cKDTree(kept).query(marked)
        np.testing.assert_allclose(distance, 0.0, atol=1e-3)  # same place, same status
    # the refined picks are still the blobs: most of them are on one
    auto = refined.loc[refined["status"] == "auto", ["z", "y", "x"]].to_numpy()
    distance, _ = cKDTree(curation.centres).query(auto)
    assert len(auto) and np.mean(distance <= REACH) >= 0.8


def test_refine_writes_any_picks_format_and_keeps_status_in_star(
    curation: Curation, tmp_path: Path
) -> None:
    from napari_cryoet_particles.io import read_star

    curated = write_curated(curation, tmp_path)
    out = tmp_path / "refined.star"
    assert main(refine_args(curation, curated, out)) == 0
    statuses = read_star(out).features["status"].value_counts()
    assert statuses["accepted"] == 3 and statuses["rejected"] == 3


def test_refine_saves_a_model_with_its_head(curation: Curation, tmp_path: Path) -> None:
    from napari_cryoet_particles.model.checkpoint import load_checkpoint

    curated = write_curated(curation, tmp_path)
    saved = tmp_path / "refined.pt"
    args = refine_args(curation, curated, tmp_path / "refined.csv", "--save-model", str(saved))
    assert main(args) == 0
    assert load_checkpoint(saved).pick_head is not None


def test_a_model_of_a_reference_search_is_refused_and_the_picks_kept(
    curation: Curation, tmp_path: Path, capsys
) -> None:
    """Points added where no object is (so no candidate is described there) are searched for by
    reference, which learns no head: --save-model fails plainly, the picks are written."""
    rng = np.random.default_rng(3)
    empty = [
        point
        for point in rng.uniform(3, np.asarray(SHAPE) - 3, (400, 3))
        if cKDTree(curation.centres).query(point)[0] > 7
    ][:3]
    added = curation.curated.iloc[:3].copy()
    added[["z", "y", "x"]] = np.asarray(empty)
    added[["z_angstrom", "y_angstrom", "x_angstrom"]] = 10.0 * np.asarray(empty)
    added["status"] = "added"
    table = pd.concat([curation.curated.assign(status="auto"), added], ignore_index=True)
    out, model = tmp_path / "like.csv", tmp_path / "like.pt"
    args = refine_args(curation, write_curated(curation, tmp_path, table), out)
    assert main([*args, "--like-accepted", "--save-model", str(model)]) == 1
    assert "no model saved" in capsys.readouterr().err
    assert out.exists() and not model.exists()
    assert (pd.read_csv(out)["status"] == "added").sum() == 3


def _no_status(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(status="auto")


def _unknown_status(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(status=np.where(table["status"] == "accepted", "good", table["status"]))


def _other_tomogram(table: pd.DataFrame) -> pd.DataFrame:
    # picks of a larger tomogram: beyond this one's x extent (48 voxels)
    return table.assign(x=table["x"] + 60.0, x_angstrom=table["x_angstrom"] + 600.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_no_status, "no pick is marked"),
        (_unknown_status, "unknown status value(s) ['good']"),
        (_other_tomogram, "outside the tomogram of shape (24, 48, 48)"),
    ],
)
def test_bad_curation_is_a_one_line_error_before_any_work(
    curation: Curation, tmp_path: Path, monkeypatch, capsys, change, message: str
) -> None:
    monkeypatch.setattr(refine_module, "refine_job", _must_not_run)
    curated = write_curated(curation, tmp_path, change(curation.curated))
    out = tmp_path / "refined.csv"
    assert main(refine_args(curation, curated, out)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cryoet-particles refine: error:") and "\n" not in err
    assert message in err
    assert not out.exists()


def _must_not_run(*args, **kwargs):
    raise AssertionError("the work started before the input was checked")


def test_like_accepted_needs_an_accepted_pick(
    curation: Curation, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(refine_module, "refine_job", _must_not_run)
    only_rejected = curation.curated.assign(
        status=curation.curated["status"].replace("accepted", "auto")
    )
    curated = write_curated(curation, tmp_path, only_rejected)
    args = refine_args(curation, curated, tmp_path / "like.csv", "--like-accepted")
    assert main(args) == 2
    assert "no pick is accepted or added" in capsys.readouterr().err


def test_missing_picks_file_and_existing_outputs_are_refused_first(
    curation: Curation, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(refine_module, "refine_job", _must_not_run)
    out = tmp_path / "refined.csv"
    assert main(refine_args(curation, tmp_path / "missing.csv", out)) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.csv" in err and "\n" not in err

    curated = write_curated(curation, tmp_path)
    out.write_text("keep me")
    assert main(refine_args(curation, curated, out)) == 2
    err = capsys.readouterr().err.strip()
    assert "exists already" in err and "\n" not in err
    assert out.read_text() == "keep me"

    model = tmp_path / "refined.pt"
    model.write_text("keep me")
    fresh = tmp_path / "fresh.csv"
    assert main(refine_args(curation, curated, fresh, "--save-model", str(model))) == 2
    assert "exists already" in capsys.readouterr().err
    assert not fresh.exists()
