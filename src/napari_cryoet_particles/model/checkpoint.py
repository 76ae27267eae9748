"""Checkpoints: one torch file with weights, the full config, the package version and a format version.

The file is a plain dict (tensors, numbers, strings, lists, dicts only) so it loads with
``torch.load(weights_only=True)``: no code from the file is ever run. Layout::

    {"format": "napari-cryoet-particles/checkpoint", "format_version": 1,
     "package_version": "0.1.0", "config": ModelConfig.to_dict(),
     "encoder": encoder state_dict, "heads": state_dict of the training heads or None,
     "training_state": {"step", "optimizer", "rng", ...} or None, "metadata": {...},
     "complete": True, "pick_head": {...} or absent}

``heads`` and ``training_state`` are only needed to resume training; inference uses the encoder.
``complete`` is False in the checkpoints a training run writes before its last step (periodic,
cancelled, interrupted); files without the key are complete unless their training state stopped
short of the configured steps. ``pick_head`` (optional) is a pick-scoring head learned from a
user's curation (:class:`~napari_cryoet_particles.detect.head.PickHead` as plain lists), which
detection applies on top of the encoder's score.
"""

import pickle
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from napari_cryoet_particles import __version__
from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.errors import CryoetInputError, CryoetWriteError, one_line
from napari_cryoet_particles.model.config import ModelConfig
from napari_cryoet_particles.model.encoder import DenseEncoder

FORMAT_TAG = "napari-cryoet-particles/checkpoint"
FORMAT_VERSION = 1
#: A failed checkpoint write with less free space than this beside it is put down to a full disk.
LOW_DISK_BYTES = 32 * 1024 * 1024
REQUIRED_KEYS = ("format", "format_version", "package_version", "config", "encoder")


@dataclass
class LoadedModel:
    """A checkpoint read back: the encoder (in eval mode, on CPU unless asked) and its config."""

    encoder: DenseEncoder
    config: ModelConfig
    path: Path | None
    package_version: str
    format_version: int
    metadata: dict = field(default_factory=dict)
    heads: dict | None = None
    training_state: dict | None = None
    complete: bool = True
    """False for a checkpoint of a training run that has not reached its last step."""
    pick_head: dict | None = None
    """A pick-scoring head learned from curation (``refine --save-model``), as plain lists."""

    @property
    def steps_done(self) -> tuple[int, int] | None:
        """(steps trained, steps planned) when the file holds a training state, else None."""
        if self.training_state is None:
            return None
        planned = int(self.config.training.get("steps", 0)) if self.config.training else 0
        return int(self.training_state.get("step", 0)), planned

    @property
    def working_voxel_size(self) -> float:
        return self.config.working_voxel_size

    @property
    def normalization(self) -> dict:
        return self.config.normalization


def default_model_path() -> Path:
    """The default model shipped inside the package (trained on simulated tomograms only)."""
    return Path(__file__).resolve().parent.parent / "data" / "default_model.pt"


def save_checkpoint(
    path: str | Path,
    encoder: DenseEncoder,
    config: ModelConfig,
    heads: dict | None = None,
    training_state: dict | None = None,
    metadata: dict | None = None,
    overwrite: bool = False,
    complete: bool = True,
    pick_head: dict | None = None,
) -> Path:
    """Write a checkpoint atomically (a crash never leaves a half-written file behind).

    ``complete=False`` marks a training run's checkpoint written before its last step.
    """
    if config.encoder != encoder.config:
        raise ValueError("config.encoder does not describe the encoder being saved")
    payload = {
        "format": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "config": config.to_dict(),
        "encoder": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "heads": heads,
        "training_state": training_state,
        "metadata": dict(metadata or {}),
        "complete": bool(complete),
    }
    if pick_head is not None:
        payload["pick_head"] = pick_head
    with atomic_write(path, overwrite=overwrite) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as error:  # torch's zip writer reports a full disk this way
            raise CryoetWriteError(path, _save_failure(Path(path).parent, error)) from None
    return Path(path)


def _save_failure(folder: Path, error: RuntimeError) -> str:
    """Why ``torch.save`` failed, in one line: torch names the zip member, not the cause."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    cause = (
        "no space left on the device"
        if free is not None and free < LOW_DISK_BYTES
        else one_line(error, 160)
    )
    return f"writing the checkpoint failed, nothing was replaced ({cause})"


def _read_payload(path: Path) -> dict:
    if not path.exists():
        raise CryoetInputError(path, "no such checkpoint file")
    if path.is_dir():
        raise CryoetInputError(path, "is a folder, not a checkpoint file")
    if not zipfile.is_zipfile(path):
        raise CryoetInputError(
            path, "not a readable checkpoint: the file is corrupt, truncated or not a torch file"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        detail = f" (it holds a {found.group(1)})" if found else ""
        raise CryoetInputError(
            path,
            "not a napari-cryoet-particles checkpoint: refused to unpickle objects other than "
            f"tensors and plain data{detail}",
        ) from None
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        zipfile.BadZipFile,
        KeyError,
        AttributeError,
    ) as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CryoetInputError(
            path,
            f"not a readable checkpoint: the file is corrupt, truncated or not a torch file ({text})",
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_TAG:
        raise CryoetInputError(
            path, "is a torch file but not a napari-cryoet-particles checkpoint (no format tag)"
        )
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CryoetInputError(
            path,
            f"checkpoint format version {version} (written by package version "
            f"{payload.get('package_version', '?')}), but this version {__version__} reads "
            f"format {FORMAT_VERSION}; retrain the model or use a matching package version",
        )
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CryoetInputError(path, f"checkpoint is incomplete: missing {', '.join(missing)}")
    return payload


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Read a checkpoint; the encoder comes back in eval mode on ``device``.

    Raises :class:`CryoetInputError` (naming the file) for a missing, corrupt, truncated, foreign
    or wrong-version file, or weights that do not fit the stored config.
    """
    path = Path(path)
    payload = _read_payload(path)
    try:
        config = ModelConfig.from_dict(payload["config"])
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise CryoetInputError(path, f"checkpoint config is invalid ({error})") from None
    encoder = DenseEncoder(config.encoder)
    try:
        encoder.load_state_dict(payload["encoder"])
    except (RuntimeError, TypeError, AttributeError) as error:
        first = str(error).strip().splitlines()[0]
        raise CryoetInputError(
            path, f"weights do not match the stored encoder config ({first})"
        ) from None
    encoder.eval()
    encoder.to(device)
    if torch.device(device).type == "cpu":
        encoder.use_channels_last()
    loaded = LoadedModel(
        encoder=encoder,
        config=config,
        path=path,
        package_version=str(payload["package_version"]),
        format_version=int(payload["format_version"]),
        metadata=dict(payload.get("metadata") or {}),
        heads=payload.get("heads"),
        training_state=payload.get("training_state"),
        pick_head=payload.get("pick_head"),
    )
    if "complete" in payload:
        loaded.complete = bool(payload["complete"])
    else:
        done = loaded.steps_done
        loaded.complete = done is None or done[0] >= done[1]
    return loaded


def load_default_model(device: torch.device | str = "cpu") -> LoadedModel:
    """Load the shipped default model, with a clear message if this installation lacks it."""
    path = default_model_path()
    if not path.exists():
        raise CryoetInputError(
            path,
            "the default model is not shipped with this installation; pass a model file (--model)",
        )
    return load_checkpoint(path, device=device)
