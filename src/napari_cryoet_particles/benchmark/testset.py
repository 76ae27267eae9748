"""The benchmark's test set: the simulated test tomograms and the record of one method on one.

Test tomograms are simulated from seeds below 100 (the default model is trained on seeds from
1000 up, detection settings and the DoG baseline were chosen on seeds 100-199): two random layouts
at SNR 0.1, one at SNR 0.07 with 3.5 µm defocus, and the real SHREC 2021 particle layout shipped in
the package's data (or ``--shared DIR``).
"""

from dataclasses import dataclass, field
from pathlib import Path

from napari_cryoet_particles.simulate.phantom import SHREC2021_LAYOUT

LAYOUT = Path("layouts") / "shrec2021_model_particle_locations.txt"
#: The tomogram size the speed and memory targets are stated for (z, y, x).
FULL_SIZE = (200, 512, 512)
#: SNR of the random-layout tomograms whose mean F1 has a target, and of the low-SNR one.
SNR = 0.1
LOW_SNR = 0.07


@dataclass
class TestTomogram:
    """A simulated test tomogram: ``snr`` and ``defocus`` (µm; None: the simulator's default)."""

    name: str
    seed: int
    size: tuple[int, int, int]
    layout: bool = False
    snr: float = SNR
    defocus: float | None = None


@dataclass
class Run:
    """One method on one tomogram: scores, wall time, peak memory.

    ``tp`` / ``fp`` / ``repeat_hits``: counted picks that found a particle, hit background, or
    hit a particle already found (the SHREC rule counts all three in precision's denominator).
    ``best_f1``: the best F1 over thresholds of the method's low-floor picks.
    """

    tomogram: str
    method: str
    layout: bool = False
    snr: float = SNR
    size: tuple[int, ...] = ()
    n_picks: int = 0
    tp: int = 0
    fp: int = 0
    repeat_hits: int = 0
    precision: float = float("nan")
    recall: float = float("nan")
    f1: float = float("nan")
    best_f1: float = float("nan")
    per_class: dict[str, float] = field(default_factory=dict)
    crop_auc: float = float("nan")
    crop_f1: float = float("nan")
    wall: float = float("nan")
    """The median of :attr:`walls` for a method timed more than once, else its one run."""
    walls: list[float] = field(default_factory=list)
    """Wall seconds of each timed run (the first one's picks are the ones scored)."""
    inner: float = float("nan")
    rss_mb: float = float("nan")
    rss_imports_mb: float = float("nan")
    threshold: float = float("nan")
    tomogram_mb: float = float("nan")
    stages: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, tomo: TestTomogram, method: str, tomogram_mb: float = float("nan")) -> "Run":
        return cls(
            tomo.name, method, tomo.layout, tomo.snr, tuple(tomo.size), tomogram_mb=tomogram_mb
        )

    @property
    def full_size(self) -> bool:
        return tuple(self.size) == FULL_SIZE


def find_shared(explicit: str | Path | None = None) -> Path | None:
    """The reference data folder holding :data:`LAYOUT`: ``explicit``, else the package's data."""
    path = Path(explicit) if explicit is not None else SHREC2021_LAYOUT.parents[1]
    return path if (path / LAYOUT).is_file() else None


def test_tomograms(quick: bool, with_layout: bool) -> list[TestTomogram]:
    """The test tomograms: in ``quick`` mode one small random one only."""
    if quick:
        return [TestTomogram("random-seed1-100x256x256", 1, (100, 256, 256))]
    tomos = [
        TestTomogram("random-seed1", 1, FULL_SIZE),
        TestTomogram("random-seed2", 2, FULL_SIZE),
        TestTomogram("random-seed5-snr0.07", 5, FULL_SIZE, snr=LOW_SNR, defocus=3.5),
    ]
    if with_layout:
        tomos.append(TestTomogram("shrec2021-layout-seed3", 3, FULL_SIZE, layout=True))
    return tomos


def simulate_test(tomo: TestTomogram, folder: Path, shared: Path | None) -> Path:
    """The SHREC-style folder of ``tomo`` in ``folder``, simulated unless it is there already."""
    from napari_cryoet_particles.simulate import simulate_dataset

    target = folder / tomo.name
    if (target / "reconstruction.mrc").is_file() and (target / "occupancy_mask.mrc").is_file():
        return target
    layout = shared / LAYOUT if tomo.layout and shared is not None else None
    options = {} if tomo.defocus is None else {"defocus": tomo.defocus}
    simulate_dataset(
        target,
        size=tomo.size,
        seed=tomo.seed,
        layout=layout,
        snr=tomo.snr,
        overwrite=True,
        projections=False,
        **options,
    )
    return target
