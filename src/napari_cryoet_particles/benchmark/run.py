"""The benchmark behind ``cryoet-particles benchmark``: our method against the baselines.

Test tomograms are simulated here, from seeds below 100 (the default model is trained on seeds
from 1000 up, detection settings and the DoG baseline were chosen on seeds 100-199): two
random layouts at SNR 0.1, one at SNR 0.07 with 3.5 µm defocus, and the real SHREC 2021 particle
layout shipped in the package's data (or ``--shared DIR``). Every method of the registry
(:mod:`.methods`) runs in its own subprocess (read → detect → write picks), so wall time and peak
memory (the child's own peak resident set, ``VmHWM``) are those of a user running it; the extra
work done for scoring (picks down to a low floor, crop maps) is left out of both. Picks are
scored by the SHREC rule (occupancy map dilated by one voxel; 4V94, vesicles and fiducials
skipped, as the SHREC 2021 results did): at the method's automatic threshold, and at the best
threshold over its low-floor picks; crops of 32² on three slices chosen by edge detection are
scored at crop level (AUC, F1). Nothing is tuned on the test tomograms' truth.
"""

import tempfile
import time
from pathlib import Path

import numpy as np

from napari_cryoet_particles import __version__
from napari_cryoet_particles.benchmark.child import sibling
from napari_cryoet_particles.benchmark.crops import crop_grid
from napari_cryoet_particles.benchmark.curation import (
    CurationRun,
    VlpCurationRun,
    curation_targets,
    curation_why,
    run_curation,
    run_vlp_curation,
    splice_curation,
)
from napari_cryoet_particles.benchmark.generalisation import (
    SIZE,
    FamilyRun,
    RealRun,
    SeedRun,
    format_generalisation,
    real_volumes_folder,
    run_families,
    run_real,
    run_seeds,
    splice_generalisation,
)
from napari_cryoet_particles.benchmark.huge import HUGE_SIZE, mirror_tile
from napari_cryoet_particles.benchmark.methods import METHODS
from napari_cryoet_particles.benchmark.report import format_report
from napari_cryoet_particles.benchmark.scoring import evaluate_run, fill_from_report
from napari_cryoet_particles.benchmark.targets import Target
from napari_cryoet_particles.benchmark.testset import (
    LAYOUT,
    SNR,
    Run,
    TestTomogram,
    find_shared,
    simulate_test,
    test_tomograms,
)
from napari_cryoet_particles.benchmark.timing import (
    TIMED_METHODS,
    TIMING_RUNS,
    load_average,
    run_child,
    timed_again,
)
from napari_cryoet_particles.benchmark.training import TRAINING_RUNS, TrainingRun, run_training
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.simulate.phantom import SHREC2021_LAYOUT

#: Methods timed on the huge tomogram (the 2D method looks at three slices only).
HUGE_METHODS = ("ours", "dog")


def _benchmark_training(
    tomos: list[TestTomogram],
    runs: list[Run],
    workdir: Path,
    shared: Path | None,
    threads: int | None,
    log,
) -> list[TrainingRun]:
    """Train on the random-layout SNR-0.1 test tomograms as a user would, then detect and score."""
    from napari_cryoet_particles.model.device import default_thread_count

    train_threads = default_thread_count()
    shipped = {r.tomogram: r for r in runs if r.method == "ours"}
    eligible = [t for t in tomos if not t.layout and np.isclose(t.snr, SNR)]
    results: list[TrainingRun] = []
    for plan in TRAINING_RUNS:
        for tomo in eligible[: plan.tomograms]:
            folder = simulate_test(tomo, workdir, shared)
            tomogram = folder / "reconstruction.mrc"
            for seed in plan.seeds:
                log(f"  training ({plan.name}, seed {seed}) on {tomo.name} ...")
                slug = f"{'finetune' if plan.extra else 'scratch'}-seed{seed}"
                checkpoint = workdir / f"{tomo.name}-{slug}.pt"
                seconds, steps, rate = run_training(
                    tomogram, checkpoint, plan.extra, train_threads, seed
                )
                out_file = workdir / f"{tomo.name}-ours-{slug}"
                run = Run.of(tomo, "ours")
                run.wall, _ = run_child(
                    "ours", tomogram, out_file, None, str(checkpoint), threads, None
                )
                evaluate_run(run, folder, out_file)
                results.append(
                    TrainingRun(
                        tomo.name,
                        plan.name,
                        seed,
                        steps,
                        seconds / 60,
                        rate,
                        train_threads,
                        run.f1,
                        run.precision,
                        run.recall,
                        shipped[tomo.name].f1 if tomo.name in shipped else float("nan"),
                    )
                )
                log(f"    {seconds / 60:.2f} min, {rate:.0f} crops/s, F1 {run.f1:.3f}")
    return results


def _workdir(work: str | Path | None) -> Path:
    """``work`` (created), else a new temporary folder."""
    workdir = Path(work) if work else Path(tempfile.mkdtemp(prefix="cryoet-benchmark-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _write_report(out: Path, text: str, overwrite: bool, log) -> None:
    from napari_cryoet_particles.io.atomic import atomic_write

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    log(f"written {out}")


def _existing_report(out: str | Path) -> Path:
    """The report a run-only entry point updates: it must exist."""
    out = Path(out)
    if not out.is_file():
        raise CryoetInputError(out, "no report to update: run the whole benchmark first")
    return out


def _regenerated(option: str, rest: str = "") -> str:
    """The line stamped under a section that a run-only entry point regenerated."""
    return (
        f"*This section regenerated by `cryoet-particles benchmark {option}` on "
        f"{time.strftime('%Y-%m-%d')} (napari-cryoet-particles {__version__}){rest}.*"
    )


def _vlp_curation(shared: Path | None, threads: int | None, log) -> list[VlpCurationRun]:
    """More like these from three added VLP centres on the real HIV-1 volume, when it is here."""
    folder = real_volumes_folder(shared)
    if folder is None:
        log("real volumes not found: the VLP curation case is left out")
        return []
    log("curation on the real HIV-1 VLPs ...")
    return run_vlp_curation(folder, threads)


def run_curation_only(
    out: str | Path = "docs/benchmarks.md",
    shared: str | Path | None = None,
    model: str | None = None,
    work: str | Path | None = None,
    threads: int | None = None,
    log=print,
) -> list[CurationRun]:
    """Regenerate only the curation section (and its targets and bullets) of an existing report,
    e.g. after changing refinement; the rest of the report stays as it was measured."""
    out, workdir = _existing_report(out), _workdir(work)
    shared_path = find_shared(shared)
    runs = []
    for tomo in test_tomograms(False, shared_path is not None):
        log(f"curation on {tomo.name} ...")
        folder = simulate_test(tomo, workdir, shared_path)
        runs.append(run_curation(folder, tomo.name, model, threads))
    targets = [Target(**fields) for fields in curation_targets(runs)]
    missed = {t.key for t in targets if t.met is False}
    stamp = _regenerated("--only-curation", "; the rest of the report is from the full run above")
    vlp = _vlp_curation(shared_path, threads, log)
    text = splice_curation(
        out.read_text(), runs, [t.row() for t in targets], curation_why(runs, missed), stamp, vlp
    )
    _write_report(out, text, True, log)
    return runs


def run_generalisation_only(
    out: str | Path = "docs/benchmarks.md",
    shared: str | Path | None = None,
    model: str | None = None,
    work: str | Path | None = None,
    threads: int | None = None,
    log=print,
) -> list[FamilyRun]:
    """Regenerate only the held-out families and real volumes section of an existing report."""
    out, workdir = _existing_report(out), _workdir(work)
    generalisation = _generalisation(workdir, find_shared(shared), model, threads, log)
    section = format_generalisation(*generalisation)
    stamp = _regenerated("--only-families")
    _write_report(out, splice_generalisation(out.read_text(), [*section, "", stamp]), True, log)
    return generalisation[0]


def _generalisation(
    workdir: Path, shared: Path | None, model: str | None, threads: int | None, log
) -> tuple[list[FamilyRun], list[RealRun], tuple[int, int, int], list[SeedRun]]:
    runs = run_families(workdir, model, threads, log=log)
    folder = real_volumes_folder(None if shared is None else shared)
    real = [] if folder is None else run_real(folder, model, threads, log)
    return runs, real, SIZE, run_seeds(workdir, threads, log=log)


def _check_methods(methods: tuple[str, ...], model: str | None) -> None:
    from napari_cryoet_particles.model.checkpoint import default_model_path

    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise CryoetInputError(None, f"unknown method(s) {', '.join(unknown)}")
    if model is None and "ours" in methods and not default_model_path().is_file():
        raise CryoetInputError(
            default_model_path(), "the default model is not shipped yet; pass --model"
        )


def _measured(
    tomo: TestTomogram,
    method: str,
    folder: Path,
    out_file: Path,
    crops: Path | None,
    model: str | None,
    threads: int | None,
    steps: int | None = None,
    tomogram_mb: float = float("nan"),
) -> Run:
    """One method run once on the test tomogram in ``folder``, timed and scored."""
    run = Run.of(tomo, method, tomogram_mb)
    run.wall, report = run_child(
        method, folder / "reconstruction.mrc", out_file, crops, model, threads, steps
    )
    run.walls = [run.wall]
    fill_from_report(run, report)
    evaluate_run(run, folder, out_file)
    return run


def _crop_grid_file(tomogram: Path, path: Path) -> float:
    """Write the crop grid of ``tomogram`` to ``path``; return the tomogram's size in MB."""
    from napari_cryoet_particles.io import read_tomogram

    volume = read_tomogram(tomogram)
    slices, ys, xs = crop_grid(volume.data)
    np.savez(path, slices=slices, ys=ys, xs=xs)
    return volume.data.nbytes / 2**20


def _run_methods(
    tomo: TestTomogram,
    folder: Path,
    methods: tuple[str, ...],
    workdir: Path,
    model: str | None,
    threads: int | None,
    quick: bool,
    log,
) -> list[Run]:
    """Every method on one test tomogram, scored; ours and the DoG timed again, interleaved."""
    tomogram = folder / "reconstruction.mrc"
    crops = workdir / f"{tomo.name}.grid.npz"
    size_mb = _crop_grid_file(tomogram, crops)
    steps = 150 if quick else None
    runs = []
    for method in methods:
        log(f"  {method} ...")
        run = _measured(
            tomo,
            method,
            folder,
            workdir / f"{tomo.name}-{method}",
            crops,
            model,
            threads,
            steps if method == "slices2d" else None,
            size_mb,
        )
        log(
            f"    F1 {run.f1:.3f} (best {run.best_f1:.3f}) P {run.precision:.3f} "
            f"R {run.recall:.3f} repeat hits {run.repeat_hits} {run.wall:.1f} s {run.rss_mb:.0f} MB"
        )
        runs.append(run)
    timed = [r for r in runs if r.method in TIMED_METHODS]
    if not quick and len(timed) > 1:
        scratch = workdir / f"{tomo.name}-timing"
        timed_again(timed, tomogram, scratch, model, threads, TIMING_RUNS - 1, log)
    return runs


def _curated(
    folder: Path, tomo: TestTomogram, model: str | None, threads: int | None, log
) -> CurationRun:
    log("  curation ...")
    curated = run_curation(folder, tomo.name, model, threads)
    log(
        f"    F1 {curated.f1_before:.3f} -> "
        + ", ".join(f"{c} marks {v:.3f}" for c, v in curated.f1_after.items())
        + f"; ARI {curated.ari:.3f}"
    )
    return curated


def _speed_cube(workdir: Path, model: str | None, threads: int | None, log) -> Run:
    """Ours on a 512³ tomogram, timed :data:`TIMING_RUNS` times."""
    cube = TestTomogram("speed-512-cubed-seed4", 4, (512, 512, 512))
    log(f"simulating {cube.name} {cube.size} ...")
    folder = simulate_test(cube, workdir, None)
    tomogram = folder / "reconstruction.mrc"
    size_mb = tomogram.stat().st_size / 2**20
    run = _measured(
        cube,
        "ours",
        folder,
        workdir / f"{cube.name}-ours",
        None,
        model,
        threads,
        tomogram_mb=size_mb,
    )
    timed_again(
        [run], tomogram, workdir / f"{cube.name}-timing", model, threads, TIMING_RUNS - 1, log
    )
    return run


def run_benchmark(
    out: str | Path = "docs/benchmarks.md",
    quick: bool = False,
    shared: str | Path | None = None,
    model: str | None = None,
    work: str | Path | None = None,
    threads: int | None = None,
    methods: tuple[str, ...] = tuple(METHODS),
    overwrite: bool = True,
    log=print,
    train: bool = True,
    huge: bool = True,
    curation: bool = True,
    families: bool = True,
) -> list[Run]:
    """Simulate the test tomograms, run every method, write the Markdown report; return the runs.

    ``train``: also train models on the random-layout test tomograms (from scratch and
    fine-tuning the shipped model, see :mod:`.training`) and detect with them. ``huge``: also
    time ours and the DoG on a 1024×1024×500 tomogram (2 GB, :mod:`.huge`; not in ``quick``).
    ``curation``: also simulate a user's curation on each test tomogram and refine
    (:mod:`.curation`).
    """
    _check_methods(methods, model)
    shared_path = find_shared(shared)
    if shared_path is None:
        log(
            f"{LAYOUT} not found in {shared or SHREC2021_LAYOUT.parents[1]}: "
            "the SHREC 2021 layout tomogram is left out"
        )
    workdir = _workdir(work)
    tomos = test_tomograms(quick, shared_path is not None)
    load_before = load_average()
    ours = "ours" in methods
    runs: list[Run] = []
    curations: list[CurationRun] = []
    for tomo in tomos:
        log(f"simulating {tomo.name} {tomo.size} ...")
        folder = simulate_test(tomo, workdir, shared_path)
        runs += _run_methods(tomo, folder, methods, workdir, model, threads, quick, log)
        if curation and ours:
            curations.append(_curated(folder, tomo, model, threads, log))
    training: list[TrainingRun] = []
    if train and ours:
        training = _benchmark_training(tomos, runs, workdir, shared_path, threads, log)
    speed = [_speed_cube(workdir, model, threads, log)] if not quick and ours else []
    generalisation: tuple = ([],)
    if families and not quick and ours:
        generalisation = _generalisation(workdir, shared_path, model, threads, log)
    huge_runs: list[Run] = []
    if huge and not quick:
        source = simulate_test(tomos[0], workdir, shared_path) / "reconstruction.mrc"
        huge_runs = run_huge(source, workdir, methods, model, threads, log)
    load = (load_before, load_average())
    vlp = _vlp_curation(shared_path, threads, log) if curation and ours and not quick else []
    text = format_report(
        runs, speed, quick, shared_path, model, threads, load, training, huge_runs, curations, vlp
    )
    if generalisation[0]:
        text = splice_generalisation(text, format_generalisation(*generalisation))
    _write_report(Path(out), text, overwrite, log)
    return runs + speed + huge_runs


def run_huge(
    source: Path,
    workdir: Path,
    methods: tuple[str, ...],
    model: str | None,
    threads: int | None,
    log=print,
) -> list[Run]:
    """Time and peak memory of :data:`HUGE_METHODS` on :data:`~.huge.HUGE_SIZE`, made from
    ``source`` (no truth: its picks are counted, not scored)."""
    from napari_cryoet_particles.io import read_picks

    tomo = TestTomogram("huge-" + "x".join(str(n) for n in HUGE_SIZE[::-1]), 0, HUGE_SIZE)
    path = workdir / f"{tomo.name}.mrc"
    if not path.is_file():
        log(f"making {tomo.name} {tomo.size} from {source} ...")
        mirror_tile(source, path, HUGE_SIZE)
    runs = []
    for method in (m for m in methods if m in HUGE_METHODS):
        log(f"  {method} on {tomo.name} ...")
        out_file = workdir / f"{tomo.name}-{method}"
        run = Run.of(tomo, method, path.stat().st_size / 2**20)
        run.wall, report = run_child(method, path, out_file, None, model, threads, None)
        fill_from_report(run, report)
        run.n_picks = len(read_picks(sibling(out_file, ".csv")))
        log(f"    {run.n_picks} picks {run.wall:.1f} s {run.rss_mb:.0f} MB")
        runs.append(run)
    return runs
