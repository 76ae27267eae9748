"""The benchmark's method registry and its child process (on tiny volumes, no model)."""

import json
from pathlib import Path

import numpy as np

from napari_cryoet_particles.baselines import dog
from napari_cryoet_particles.benchmark.child import main as _child
from napari_cryoet_particles.benchmark.child import sibling
from napari_cryoet_particles.benchmark.methods import METHODS, MethodOptions
from napari_cryoet_particles.benchmark.testset import Run
from napari_cryoet_particles.cli import build_parser
from napari_cryoet_particles.io import Volume, read_picks, write_tomogram


def _blobs(shape=(24, 64, 64), n: int = 12, seed: int = 0) -> np.ndarray:
    """Noise with ``n`` dark Gaussian blobs of sigma 2."""
    rng = np.random.default_rng(seed)
    volume = rng.normal(0, 0.3, shape).astype(np.float32)
    grid = np.indices(shape, dtype=np.float32)
    for _ in range(n):
        centre = [rng.uniform(6, s - 6) for s in shape]
        d2 = sum((grid[a] - centre[a]) ** 2 for a in range(3))
        volume -= np.exp(-d2 / 8.0).astype(np.float32)
    return volume


def test_the_benchmark_dog_is_detect_dog_with_its_tuned_defaults(monkeypatch) -> None:
    calls: list[tuple[tuple, dict]] = []
    real = dog.detect_dog

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(dog, "detect_dog", spy)
    volume = Volume(_blobs(), 10.0)
    handed: list = []
    output = METHODS["dog"].run(volume, MethodOptions(slices=(12,)), handed.append)
    # the automatic picks: detect_dog(volume), no parameter overridden
    assert calls[0] == ((volume,), {})
    # the ranking set: the same call with a lower threshold only
    assert calls[1][0] == (volume,) and set(calls[1][1]) == {"threshold"}
    assert calls[1][1]["threshold"] <= output.report["threshold"]
    (auto,) = handed
    assert 0 < len(auto) <= len(output.floor)
    np.testing.assert_array_equal(auto.zyx, output.floor.zyx[: len(auto)])
    score, binary = output.maps[12]
    assert score.shape == binary.shape == (64, 64) and binary.any()


def test_every_face_lists_the_registry() -> None:
    assert list(METHODS) == [
        "ours",
        "dog",
        "broadband",
        "broadband-adaptive",
        "log",
        "hessian",
        "slices2d",
    ]
    args = build_parser().parse_args(["benchmark"])
    assert args.methods == list(METHODS)
    assert METHODS["dog"].label == "DoG (previous tuning)"


def test_child_writes_automatic_and_floor_picks_and_times_only_the_user_part(
    tmp_path: Path,
) -> None:
    tomogram = write_tomogram(tmp_path / "tomo.mrc", _blobs(), 10.0)
    grid = tmp_path / "grid.npz"
    np.savez(grid, slices=np.array([8, 16]), ys=np.array([16, 48]), xs=np.array([16, 32, 48]))
    out = tmp_path / "random-seed5-snr0.07-dog"  # a dot in the name must not eat the suffix
    assert _child(["dog", str(tomogram), "--out", str(out), "--crops", str(grid)]) == 0
    report = json.loads(sibling(out, ".json").read_text())
    assert report["inner"] > 0 and report["rss_mb"] >= report["rss_imports_mb"] > 0
    assert report["scoring_seconds"] >= 0 and np.isfinite(report["threshold"])
    auto = read_picks(sibling(out, ".csv"))
    floor = read_picks(sibling(out, "-all.csv"))
    assert 0 < len(auto) <= len(floor)
    assert np.all(auto.scores >= report["threshold"])
    crops = np.load(sibling(out, ".crops.npz"))
    assert len(crops["score"]) == len(crops["assignment"]) == len(crops["centres"]) == 2 * 2 * 3


def test_a_timing_only_child_stops_once_its_picks_are_written(tmp_path: Path) -> None:
    tomogram = write_tomogram(tmp_path / "tomo.mrc", _blobs(), 10.0)
    out = tmp_path / "tomo-dog-timing"
    assert _child(["dog", str(tomogram), "--out", str(out), "--timing-only"]) == 0
    report = json.loads(sibling(out, ".json").read_text())
    assert report["inner"] > 0 and report["scoring_seconds"] >= 0
    assert len(read_picks(sibling(out, ".csv"))) > 0
    assert not sibling(out, "-all.csv").exists()  # no low-floor picks: nothing after the picks


def test_repeated_timings_interleave_the_methods_and_take_the_median(monkeypatch) -> None:
    from napari_cryoet_particles.benchmark import timing

    calls: list[str] = []
    walls = {"ours": iter([30.0, 20.0]), "dog": iter([9.0, 50.0])}

    def child(method, tomogram, out, crops, model, threads, steps, timing_only=False):
        assert timing_only and crops is None
        calls.append(method)
        return next(walls[method]), {}

    monkeypatch.setattr(timing, "run_child", child)
    ours = Run("t", "ours", wall=24.0, walls=[24.0])
    dogs = Run("t", "dog", wall=10.0, walls=[10.0])
    timing.timed_again([ours, dogs], Path("t.mrc"), Path("scratch"), None, None, 2, lambda _: None)
    assert calls == ["dog", "ours", "ours", "dog"]  # the order reversed every other round
    assert ours.walls == [24.0, 30.0, 20.0] and ours.wall == 24.0
    assert dogs.walls == [10.0, 9.0, 50.0] and dogs.wall == 10.0
