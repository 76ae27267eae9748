"""Self-supervised training loop (no labels): a generator job yielding :class:`Progress`.

One step: draw ``batch_size`` source blocks (see :mod:`.sampling`), make two augmented views of
each (a positive pair, :mod:`.augment`) and, if a puzzle term is on, a framed and a framed +
block-shuffled copy of the first view (:mod:`.puzzle`); run the encoder once on all of them (and
the momentum encoder on the two views if the pixel term is on); add up the weighted objectives
(:mod:`.losses`); one AdamW step with a warm-up + cosine learning-rate schedule, then update the
momentum encoder.

Reproducibility: every random number of the data pipeline comes from one ``torch.Generator``
seeded with ``seed``; model initialisation uses ``torch.manual_seed(seed)``. The generator state,
the optimizer state and the step are stored in the checkpoint, so cancel + resume continues the
exact same sequence: on CPU the result equals an uninterrupted run.
"""

import copy
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.volume import Volume
from napari_cryoet_particles.jobs import CancelToken, Job, JobCancelled, Progress
from napari_cryoet_particles.model.augment import AugmentConfig, make_views
from napari_cryoet_particles.model.checkpoint import (
    LoadedModel,
    default_model_path,
    load_checkpoint,
    save_checkpoint,
)
from napari_cryoet_particles.model.config import DEFAULT_WORKING_VOXEL_SIZE, ModelConfig
from napari_cryoet_particles.model.device import configure_threads, select_device
from napari_cryoet_particles.model.encoder import DenseEncoder, EncoderConfig
from napari_cryoet_particles.model.heads import ContrastiveHeads
from napari_cryoet_particles.model.losses import (
    dense_nt_xent,
    feature_grid,
    match_voxels,
    nt_xent,
    pixel_consistency,
    puzzle_ce,
    puzzle_kl,
)
from napari_cryoet_particles.model.puzzle import (
    apply_puzzle,
    composition_table,
    frame_blocks,
    puzzle_permutations,
)
from napari_cryoet_particles.model.sampling import CropSampler, make_source

LOSS_NAMES = ("ntxent", "dense", "pixel", "puzzle_ce", "puzzle_kl")
#: NT-Xent alone: the other terms are implemented and selectable, but on validation tomograms
#: they made the embedding's k-means split worse (docs/model.md, "Choosing the objectives").
DEFAULT_LOSS_WEIGHTS = {
    "ntxent": 1.0,
    "dense": 0.0,
    "pixel": 0.0,
    "puzzle_ce": 0.0,
    "puzzle_kl": 0.0,
}


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint under ``training``)."""

    steps: int = 150
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    grad_clip: float = 5.0
    seed: int = 0
    checkpoint_every: int = 50
    threads: int | None = None
    working_voxel_size: float = DEFAULT_WORKING_VOXEL_SIZE
    uniform_fraction: float = 0.25
    """Share of crop centres drawn uniformly instead of from the content map."""
    loss_weights: dict = field(default_factory=lambda: dict(DEFAULT_LOSS_WEIGHTS))
    temperature: float = 0.2
    pixel_threshold: float = 0.7
    """Matched voxels lie closer than this many feature cells."""
    propagation_window: int = 3
    propagation_dilation: int = 1
    propagation_gamma: float = 2.0
    puzzle_gap: int = 6
    """Voxels of zeroed frame between puzzle blocks (0: none, the puzzle then reuses view A)."""
    momentum: float = 0.99
    """Starting momentum of the pixel term's target encoder (rises to 1 by the last step)."""
    pixel_queries: int = 512
    """Matched voxels per view that the pixel term is evaluated on (0 = all)."""
    dense_queries: int = 256
    """Anchor voxels per crop of the voxel-level NT-Xent."""
    dense_temperature: float = 0.2
    dense_exclusion: float = 4.0
    """Same-crop voxels closer than this (working voxels) are not used as negatives."""
    projection_dim: int = 32
    head_hidden: int = 64
    mixed_precision: bool = True
    """Use float16 autocast on CUDA (ignored on CPU and MPS)."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        unknown = set(self.loss_weights) - set(LOSS_NAMES)
        if unknown:
            raise CryoetInputError(
                None, f"unknown loss terms {sorted(unknown)}; known: {', '.join(LOSS_NAMES)}"
            )
        self.loss_weights = {name: float(self.loss_weights.get(name, 0.0)) for name in LOSS_NAMES}
        if not any(self.loss_weights.values()):
            raise CryoetInputError(None, "all loss weights are 0: nothing to train")
        if self.steps < 1 or self.batch_size < 2:
            raise CryoetInputError(
                None, "training needs steps >= 1 and batch_size >= 2 (NT-Xent needs negatives)"
            )
        multiple = 2 * self.encoder.stride
        if self.augment.crop_size < 2 * multiple or self.augment.crop_size % multiple:
            raise CryoetInputError(
                None,
                f"crop size must be a multiple of {multiple} and at least {2 * multiple}, got {self.augment.crop_size}",
            )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["encoder"] = self.encoder.to_dict()
        data["augment"] = self.augment.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        data = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}")
        if "encoder" in data:
            data["encoder"] = EncoderConfig.from_dict(dict(data["encoder"]))
        if "augment" in data:
            data["augment"] = AugmentConfig.from_dict(dict(data["augment"]))
        return cls(**data)

    def active(self, name: str) -> bool:
        return self.loss_weights.get(name, 0.0) > 0


@dataclass
class TrainResult:
    """What a finished (or resumed-and-finished) training run returns."""

    path: Path
    steps: int
    values: dict[str, float]
    seconds: float
    crops_per_second: float


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5% of the peak (a pure function of the step)."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainer:
    """The model, heads, optimizer and data pipeline of one run; :meth:`step` does one update."""

    def __init__(self, volumes: Sequence[Volume], config: TrainConfig, device: torch.device):
        self.config = config
        self.device = device
        torch.manual_seed(config.seed)
        self.encoder = DenseEncoder(config.encoder).to(device)
        self.heads = ContrastiveHeads(
            config.encoder.embedding_dim,
            config.projection_dim,
            config.head_hidden,
            len(puzzle_permutations()),
        ).to(device)
        # PixPro's momentum encoder: the pixel term's targets come from slowly averaged weights.
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.heads.dense_projector).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(
            list(self.encoder.parameters()) + list(self.heads.parameters()),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        self.use_amp = bool(config.mixed_precision and device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.permutations = puzzle_permutations()
        self.compose = composition_table(self.permutations).to(device)
        self.sampler = CropSampler(
            [
                make_source(
                    v, config.working_voxel_size, config.augment.crop_size, config.uniform_fraction
                )
                for v in volumes
            ],
            config.augment.source_half_extent(),
        )
        self.step_index = 0
        self.updating = False
        """True while the optimizer changes the weights (an interrupt then leaves a half step)."""

    # -- state -------------------------------------------------------------------------------
    def model_config(self) -> ModelConfig:
        return ModelConfig(
            encoder=self.config.encoder,
            working_voxel_size=self.config.working_voxel_size,
            training=self.config.to_dict(),
        )

    def training_state(self) -> dict:
        return {
            "step": self.step_index,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
        }

    def heads_state(self) -> dict:
        return {
            "heads": self.heads.state_dict(),
            "target_encoder": self.target_encoder.state_dict(),
            "target_projector": self.target_projector.state_dict(),
        }

    def _load_heads(self, state: dict) -> None:
        self.heads.load_state_dict(state["heads"])
        self.target_encoder.load_state_dict(state["target_encoder"])
        self.target_projector.load_state_dict(state["target_projector"])

    def save(
        self, path: Path, with_training_state: bool = True, metadata: dict | None = None
    ) -> Path:
        return save_checkpoint(
            path,
            self.encoder,
            self.model_config(),
            heads=self.heads_state() if with_training_state else None,
            training_state=self.training_state() if with_training_state else None,
            metadata=metadata,
            overwrite=True,
            complete=self.step_index >= self.config.steps,
        )

    def load_weights(self, loaded: LoadedModel, source: Path) -> None:
        """Start from another model's encoder (and heads, when they fit)."""
        if loaded.config.encoder != self.config.encoder:
            raise CryoetInputError(
                source, "its encoder architecture differs from the one being trained"
            )
        self.encoder.load_state_dict(loaded.encoder.state_dict())
        self.target_encoder.load_state_dict(loaded.encoder.state_dict())
        if loaded.heads is not None:
            try:
                self._load_heads(loaded.heads)
            except (RuntimeError, KeyError):
                warnings.warn(
                    f"{source}: training heads do not fit; starting them fresh", stacklevel=2
                )
                self.target_encoder.load_state_dict(loaded.encoder.state_dict())

    def restore(self, loaded: LoadedModel, source: Path) -> None:
        """Continue the run stored in ``loaded`` (weights, optimizer, RNG, step)."""
        state = loaded.training_state
        if state is None or loaded.heads is None:
            raise CryoetInputError(
                source, "holds no training state to resume from (a final or exported model?)"
            )
        self.encoder.load_state_dict(loaded.encoder.state_dict())
        try:
            self._load_heads(loaded.heads)
        except (RuntimeError, KeyError) as error:
            raise CryoetInputError(
                source, f"its training heads do not fit this version ({type(error).__name__})"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        self.step_index = int(state["step"])

    # -- one update --------------------------------------------------------------------------
    def losses(self) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        """Draw a batch and compute the weighted loss; returns (total, terms, crops seen)."""
        config = self.config
        blocks, ratios = self.sampler.sample(config.batch_size, self.generator)
        blocks = blocks.to(self.device)
        view_a, geometry_a = make_views(blocks, config.augment, self.generator, ratios)
        view_b, geometry_b = make_views(blocks, config.augment, self.generator, ratios)
        inputs = [view_a, view_b]
        puzzled = config.active("puzzle_ce") or config.active("puzzle_kl")
        if puzzled:
            classes = torch.randint(
                1, len(self.permutations), (config.batch_size,), generator=self.generator
            )
            framed = frame_blocks(view_a, config.puzzle_gap)
            if config.puzzle_gap > 0:
                inputs.append(framed)
            inputs.append(apply_puzzle(framed, self.permutations[classes]))
            classes = classes.to(self.device)
        batch = config.batch_size
        with torch.autocast(
            device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp
        ):
            embedding = self.encoder(torch.cat(inputs))
        embedding = embedding.float()
        emb_a, emb_b = embedding[:batch], embedding[batch : 2 * batch]
        terms: dict[str, torch.Tensor] = {}
        if config.active("ntxent"):
            projections = self.heads.project_global(embedding[: 2 * batch])
            terms["ntxent"] = nt_xent(projections[:batch], projections[batch:], config.temperature)
        if config.active("pixel") or config.active("dense"):
            shape = tuple(emb_a.shape[2:])
            dense = self.heads.project_dense(embedding[: 2 * batch])
            match = match_voxels(
                geometry_a,
                geometry_b,
                shape,
                self.encoder.stride,
                self.encoder.offset,
                config.pixel_threshold,
            )
        if config.active("dense"):
            centres = feature_grid(shape, self.encoder.stride, self.encoder.offset, self.device)
            terms["dense"] = dense_nt_xent(
                dense[:batch],
                dense[batch:],
                match,
                geometry_a.to_world(centres),
                config.dense_queries,
                self.generator,
                config.dense_temperature,
                config.dense_exclusion,
            )
        if config.active("pixel"):
            with torch.no_grad():
                targets = self.target_projector(self.target_encoder(torch.cat(inputs[:2])).float())
            terms["pixel"] = pixel_consistency(
                dense[:batch],
                dense[batch:],
                match,
                self.heads.propagation,
                config.propagation_window,
                config.propagation_dilation,
                config.propagation_gamma,
                config.pixel_queries,
                self.generator,
                targets[:batch],
                targets[batch:],
            )
        if puzzled:
            normal = embedding[2 * batch : 3 * batch] if config.puzzle_gap > 0 else emb_a
            logits_normal = self.heads.puzzle_logits(normal)
            logits_puzzled = self.heads.puzzle_logits(embedding[-batch:])
            if config.active("puzzle_ce"):
                terms["puzzle_ce"] = puzzle_ce(logits_normal, logits_puzzled, classes)
            if config.active("puzzle_kl"):
                terms["puzzle_kl"] = puzzle_kl(logits_normal, logits_puzzled, classes, self.compose)
        del emb_b
        total = sum(config.loss_weights[name] * value for name, value in terms.items())
        return total, terms, len(inputs) * batch

    @torch.no_grad()
    def update_targets(self) -> None:
        """Exponential moving average of the online weights (momentum rises to 1, cosine)."""
        base = self.config.momentum
        progress = self.step_index / max(1, self.config.steps)
        momentum = 1 - (1 - base) * (math.cos(math.pi * progress) + 1) / 2
        pairs = [
            (self.target_encoder, self.encoder),
            (self.target_projector, self.heads.dense_projector),
        ]
        for target, online in pairs:
            for t, o in zip(target.parameters(), online.parameters(), strict=True):
                t.mul_(momentum).add_(o.detach(), alpha=1 - momentum)
            for t, o in zip(target.buffers(), online.buffers(), strict=True):
                t.copy_(o)

    def step(self) -> dict[str, float]:
        """One optimisation step; returns the loss terms as floats."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate_at(self.step_index, self.config)
        for module in (self.encoder, self.heads, self.target_encoder, self.target_projector):
            module.train()
        self.optimizer.zero_grad(set_to_none=True)
        total, terms, crops = self.losses()
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        params = list(self.encoder.parameters()) + list(self.heads.parameters())
        torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self.updating = True
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.update_targets()
        self.step_index += 1
        self.updating = False
        values = {name: float(value.detach()) for name, value in terms.items()}
        values["loss"] = float(total.detach())
        values["crops"] = float(crops)
        return values


def _resolve_init(init: str | Path | None) -> Path | None:
    if init is None:
        return None
    if str(init) == "default":
        return default_model_path()
    return Path(init)


def train_job(
    volumes: Sequence[Volume],
    out: str | Path,
    config: TrainConfig | None = None,
    device: str | torch.device = "auto",
    init: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    cancel: CancelToken | None = None,
) -> Job[TrainResult]:
    """Train the encoder on ``volumes`` without labels; a job generator (see :mod:`..jobs`).

    Writes ``out`` every ``checkpoint_every`` steps, at the end and when cancelled, interrupted
    (Ctrl-C) or abandoned (with the training state, so ``resume=True`` continues). ``init``: ``"default"`` (the shipped model) or a
    checkpoint path whose encoder weights start the run. ``resume``: continue the run stored in
    ``out``; its stored config is used and ``config``, if given, only sets the total ``steps``.
    Yields ``Progress(step, total, values={loss terms, "loss", "crops_per_s"})``; returns a
    :class:`TrainResult`.
    """
    out = Path(out)
    cancel = cancel or CancelToken()
    if not volumes:
        raise CryoetInputError(None, "training needs at least one tomogram")
    if not out.parent.exists():
        raise CryoetInputError(out, f"folder {out.parent} does not exist")
    resumed: LoadedModel | None = None
    if resume:
        if not out.exists():
            raise CryoetInputError(out, "nothing to resume: the file does not exist")
        resumed = load_checkpoint(out)
        try:
            stored = TrainConfig.from_dict(resumed.config.training)
        except (TypeError, ValueError) as error:
            raise CryoetInputError(out, f"its training config cannot be read ({error})") from None
        if config is not None:
            stored.steps = config.steps
            stored.threads = config.threads
        config = stored
    elif out.exists() and not overwrite:
        raise CryoetInputError(
            out, "exists already; pass overwrite=True (CLI: --overwrite) or resume=True (--resume)"
        )
    config = config or TrainConfig()
    init_path = _resolve_init(init)
    initial: LoadedModel | None = None
    if init_path is not None and resumed is None:
        initial = load_checkpoint(init_path)
        config.encoder = initial.config.encoder
        config.working_voxel_size = initial.config.working_voxel_size
    configure_threads(config.threads)
    torch_device = select_device(device)
    trainer = Trainer(volumes, config, torch_device)
    if resumed is not None:
        trainer.restore(resumed, out)
    elif initial is not None and init_path is not None:
        trainer.load_weights(initial, init_path)
    started = time.perf_counter()
    crops = 0
    values: dict[str, float] = {}
    yield Progress(trainer.step_index, config.steps, "preparing", {})
    while trainer.step_index < config.steps:
        try:
            cancel.check()
        except JobCancelled:
            trainer.save(out)
            raise
        step_started = time.perf_counter()
        generator_state = trainer.generator.get_state()
        try:
            values = trainer.step()
        except KeyboardInterrupt:
            if not trainer.updating:  # weights untouched: rewind the RNG and keep a resumable file
                trainer.generator.set_state(generator_state)
                trainer.save(out)
            raise
        step_crops = int(values.pop("crops"))
        crops += step_crops
        values["crops_per_s"] = step_crops / max(time.perf_counter() - step_started, 1e-9)
        if trainer.step_index % config.checkpoint_every == 0 or trainer.step_index == config.steps:
            trainer.save(out)
        try:
            yield Progress(trainer.step_index, config.steps, "training", dict(values))
        except GeneratorExit:  # abandoned between steps: keep a resumable checkpoint
            trainer.save(out)
            raise
    seconds = time.perf_counter() - started
    return TrainResult(out, trainer.step_index, values, seconds, crops / max(seconds, 1e-9))


def export_model(
    checkpoint: str | Path, out: str | Path, metadata: dict | None = None, overwrite: bool = False
) -> Path:
    """Write an inference-only copy of ``checkpoint`` (no heads, optimizer or RNG state)."""
    loaded = load_checkpoint(checkpoint)
    merged = {**loaded.metadata, **(metadata or {})}
    return save_checkpoint(
        out,
        loaded.encoder,
        loaded.config,
        metadata=merged,
        overwrite=overwrite,
        complete=loaded.complete,
    )
