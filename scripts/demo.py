"""Demo: the sample tomogram, detection, curation docks and metrics.

    python scripts/demo.py                      # napari with the plugin's docks; detection starts
    python scripts/demo.py --headless --out DIR # the same pipeline without a screen:
                                                # DIR/sample (SHREC folder), DIR/picks.csv,
                                                # DIR/metrics.json, DIR/curves.png

Both use the shipped default model unless ``--model`` names a checkpoint.
"""

import argparse
import sys
import time
from pathlib import Path

PLUGIN = "napari-cryoet-particles"
DOCKS = ("Tomogram", "Train", "Detect", "Curate", "Metrics", "Export")


def choose_model(path: Path | None) -> Path:
    from napari_cryoet_particles.model import default_model_path

    model = path or default_model_path()
    if not model.exists():
        what = "model file" if path else "shipped default model"
        print(
            f"demo: the {what} {model} is missing; pass --model CHECKPOINT (e.g. from cryoet-particles train)",
            file=sys.stderr,
        )
        sys.exit(2)
    return model


def write_sample_folder(folder: Path, overwrite: bool) -> Path:
    """The sample as a SHREC-style folder: reconstruction, particle_locations.txt, occupancy mask."""
    import numpy as np

    from napari_cryoet_particles.io import write_shrec_locations, write_tomogram
    from napari_cryoet_particles.simulate import make_sample_dataset

    sample = make_sample_dataset()
    folder.mkdir(parents=True, exist_ok=True)
    write_tomogram(
        folder / "reconstruction.mrc", sample.volume, sample.voxel_size, overwrite=overwrite
    )
    write_shrec_locations(folder / "particle_locations.txt", sample.truth, overwrite=overwrite)
    if sample.occupancy is not None:
        occupancy = np.asarray(sample.occupancy).astype(np.int16)
        write_tomogram(
            folder / "occupancy_mask.mrc", occupancy, sample.voxel_size, overwrite=overwrite
        )
    return folder


def headless(out: Path, model: Path, overwrite: bool) -> int:
    """Sample → detection → picks.csv → scoring (the functions ``cryoet-particles`` uses)."""
    from napari_cryoet_particles.detect import DetectionConfig, detect_particles_job
    from napari_cryoet_particles.evaluate import plot_ranking_curves, save_figure_png, write_json
    from napari_cryoet_particles.evaluate.report import evaluate_files, format_report
    from napari_cryoet_particles.io import CryoetInputError, read_tomogram, write_csv
    from napari_cryoet_particles.jobs import run_job_with_bar

    try:
        folder = write_sample_folder(out / "sample", overwrite)
        volume = read_tomogram(folder / "reconstruction.mrc")
        started = time.perf_counter()
        result = run_job_with_bar(detect_particles_job(volume, model, DetectionConfig()), "detect")
        seconds = time.perf_counter() - started
        picks_path = write_csv(out / "picks.csv", result.picks, overwrite=overwrite)
        report = evaluate_files(folder, picks_path)
        document = {**report.to_dict(), "detection_seconds": seconds, "model": str(model)}
        metrics_path = write_json(out / "metrics.json", document, overwrite=overwrite)
        written = [picks_path, metrics_path]
        if report.curves is not None:
            written.append(
                save_figure_png(
                    plot_ranking_curves(report.curves), out / "curves.png", overwrite=overwrite
                )
            )
    except CryoetInputError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2
    print(format_report(report))
    print(
        f"\n{len(result.picks)} picks in {seconds:.1f} s; wrote "
        + ", ".join(str(p) for p in written)
    )
    return 0


def gui(model: Path, quit_after: float | None = None) -> int:
    """napari with every dock; the sample opens and detection starts at once."""
    import napari

    from napari_cryoet_particles._widgets.detect import MODEL_FILE

    viewer = napari.Viewer(title="napari-cryoet-particles demo")
    docks = {
        name: viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=name != "Tomogram")[1]
        for name in DOCKS
    }
    detect = docks["Detect"]
    detect.model.setCurrentText(MODEL_FILE)
    detect.model_path.setText(str(model))
    docks["Tomogram"].job.finished.connect(lambda outcome: detect.run())
    docks["Tomogram"].open_sample()
    if quit_after is not None:
        from qtpy.QtCore import QTimer

        def report_and_close() -> None:
            picks = detect.picks_layer
            print(
                f"demo: {0 if picks is None else len(picks.data)} picks; {detect.job.status.text()}"
            )
            print(f"demo: metrics: {docks['Metrics'].headline.text()}")
            viewer.close()

        QTimer.singleShot(int(quit_after * 1000), report_and_close)
    napari.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--headless", action="store_true", help="no window: run the pipeline and write files"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("demo-output"), help="output folder (--headless)"
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="checkpoint (default: the shipped model)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace earlier outputs in --out")
    parser.add_argument(
        "--quit-after", type=float, default=None, help="close the window after this many seconds"
    )
    args = parser.parse_args(argv)
    model = choose_model(args.model)
    if args.headless:
        args.out.mkdir(parents=True, exist_ok=True)
        return headless(args.out, model, args.overwrite)
    return gui(model, args.quit_after)


if __name__ == "__main__":
    sys.exit(main())
