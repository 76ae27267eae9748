"""The training loop: loss goes down, cancel + resume equals an uninterrupted run, CLI `train`."""

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoet_particles.cli import main
from napari_cryoet_particles.io import CryoetInputError, Volume, read_tomogram, write_tomogram
from napari_cryoet_particles.jobs import CancelToken, JobCancelled, run_job
from napari_cryoet_particles.model import load_checkpoint
from napari_cryoet_particles.model.augment import AugmentConfig
from napari_cryoet_particles.model.encoder import EncoderConfig
from napari_cryoet_particles.model.sampling import CropSampler, content_map, make_source
from napari_cryoet_particles.model.train import (
    TrainConfig,
    Trainer,
    export_model,
    learning_rate_at,
    train_job,
)

ALL_TERMS = {"ntxent": 1.0, "dense": 0.5, "pixel": 1.0, "puzzle_ce": 0.5, "puzzle_kl": 0.5}
TINY_ENCODER = EncoderConfig(stride=2, width=4, depth=1, dilations=(1,), embedding_dim=6)


def blob_volume(
    seed: int = 0, shape: tuple[int, int, int] = (40, 48, 48), slab: bool = False
) -> np.ndarray:
    """Dark Gaussian blobs in noise; with ``slab`` only the middle third holds blobs."""
    rng = np.random.default_rng(seed)
    volume = rng.normal(0.0, 0.3, shape).astype(np.float32)
    grid = np.indices(shape, dtype=np.float32)
    z_low, z_high = (shape[0] // 3, 2 * shape[0] // 3) if slab else (4, shape[0] - 4)
    for _ in range(25):
        centre = [
            rng.uniform(z_low, z_high),
            rng.uniform(4, shape[1] - 4),
            rng.uniform(4, shape[2] - 4),
        ]
        d2 = sum((grid[a] - centre[a]) ** 2 for a in range(3))
        volume -= np.exp(-d2 / (2 * 2.0**2)).astype(np.float32)
    return volume


def tiny_config(**changes) -> TrainConfig:
    settings = dict(
        steps=6,
        batch_size=4,
        checkpoint_every=100,
        threads=1,
        warmup_steps=2,
        encoder=TINY_ENCODER,
        augment=AugmentConfig(crop_size=16),
        projection_dim=8,
        head_hidden=16,
        pixel_queries=64,
        dense_queries=32,
        puzzle_gap=2,
        loss_weights=ALL_TERMS,
    )
    settings.update(changes)
    return TrainConfig(**settings)


@pytest.fixture
def volume() -> Volume:
    return Volume(blob_volume(), 10.0, None)


@pytest.mark.slow
def test_short_training_lowers_the_loss(tmp_path: Path, volume: Volume) -> None:
    config = tiny_config(steps=40, batch_size=8, learning_rate=5e-3, seed=1)
    losses = []
    result = run_job(
        train_job([volume], tmp_path / "m.pt", config),
        lambda p: losses.append(p.values.get("loss")),
    )
    losses = [v for v in losses if v is not None]
    assert len(losses) == 40 and result.steps == 40
    assert np.mean(losses[-8:]) < np.mean(losses[:8]) - 0.2
    loaded = load_checkpoint(result.path)
    assert loaded.config.training["steps"] == 40 and loaded.training_state["step"] == 40
    assert result.crops_per_second > 0


def test_cancel_and_resume_equal_an_uninterrupted_run(tmp_path: Path, volume: Volume) -> None:
    config = tiny_config(steps=6)
    run_job(train_job([volume], tmp_path / "full.pt", config))

    token = CancelToken()

    def cancel_after_three(report) -> None:
        if report.step == 3:
            token.cancel()

    with pytest.raises(JobCancelled):
        run_job(train_job([volume], tmp_path / "part.pt", config, cancel=token), cancel_after_three)
    assert load_checkpoint(tmp_path / "part.pt").training_state["step"] == 3
    run_job(train_job([volume], tmp_path / "part.pt", None, resume=True))

    full = load_checkpoint(tmp_path / "full.pt")
    resumed = load_checkpoint(tmp_path / "part.pt")
    assert resumed.training_state["step"] == 6
    for name, tensor in full.encoder.state_dict().items():
        assert torch.equal(tensor, resumed.encoder.state_dict()[name]), name


def test_ctrl_c_mid_step_and_abandoning_leave_resumable_checkpoints(
    tmp_path: Path, volume: Volume, monkeypatch
) -> None:
    config = tiny_config(steps=5)
    run_job(train_job([volume], tmp_path / "full.pt", config))
    original = Trainer.losses
    calls = []

    def interrupted(self):
        calls.append(1)
        if len(calls) == 3:
            self.sampler.sample(2, self.generator)  # consume random numbers, then Ctrl-C
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "losses", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_job(train_job([volume], tmp_path / "part.pt", config))
    monkeypatch.setattr(Trainer, "losses", original)
    assert load_checkpoint(tmp_path / "part.pt").training_state["step"] == 2

    job = train_job([volume], tmp_path / "part.pt", None, resume=True)
    while next(job).step < 4:
        pass
    job.close()  # e.g. a GUI dropping the job between steps
    assert load_checkpoint(tmp_path / "part.pt").training_state["step"] == 4
    run_job(train_job([volume], tmp_path / "part.pt", None, resume=True))
    full, resumed = load_checkpoint(tmp_path / "full.pt"), load_checkpoint(tmp_path / "part.pt")
    for name, tensor in full.encoder.state_dict().items():
        assert torch.equal(tensor, resumed.encoder.state_dict()[name]), name


def test_momentum_target_follows_the_online_encoder(volume: Volume) -> None:
    def first_weight(module: torch.nn.Module) -> torch.Tensor:
        return next(module.parameters()).detach().clone()

    for momentum, follows in ((0.0, True), (1.0, False)):
        trainer = Trainer([volume], tiny_config(momentum=momentum), torch.device("cpu"))
        before = first_weight(trainer.target_encoder)
        trainer.step()
        online, target = first_weight(trainer.encoder), first_weight(trainer.target_encoder)
        assert not torch.equal(online, before)
        assert torch.equal(target, online) == follows and torch.equal(target, before) != follows


def test_loss_terms_are_selectable(tmp_path: Path, volume: Volume) -> None:
    seen = []
    config = tiny_config(steps=2, loss_weights={"ntxent": 1.0, "puzzle_ce": 1.0})
    run_job(train_job([volume], tmp_path / "m.pt", config), lambda p: seen.append(set(p.values)))
    assert {"ntxent", "puzzle_ce", "loss", "crops_per_s"} == seen[-1]
    with pytest.raises(CryoetInputError, match="unknown loss"):
        tiny_config(loss_weights={"jigsaw": 1.0})
    with pytest.raises(CryoetInputError, match="all loss weights are 0"):
        tiny_config(loss_weights={"ntxent": 0.0})


def test_training_refuses_to_overwrite_and_resume_needs_state(
    tmp_path: Path, volume: Volume
) -> None:
    out = tmp_path / "m.pt"
    run_job(train_job([volume], out, tiny_config(steps=1)))
    with pytest.raises(CryoetInputError, match="exists already"):
        run_job(train_job([volume], out, tiny_config(steps=1)))
    exported = export_model(out, tmp_path / "final.pt")
    assert load_checkpoint(exported).training_state is None
    with pytest.raises(CryoetInputError, match="no training state"):
        run_job(train_job([volume], exported, None, resume=True))


def test_init_from_a_checkpoint(tmp_path: Path, volume: Volume) -> None:
    first = run_job(train_job([volume], tmp_path / "a.pt", tiny_config(steps=2))).path
    other = tiny_config(
        steps=1, encoder=EncoderConfig(stride=2, width=8, depth=1, dilations=(1,), embedding_dim=6)
    )
    second = run_job(train_job([volume], tmp_path / "b.pt", other, init=first)).path
    assert (
        load_checkpoint(second).config.encoder == TINY_ENCODER
    )  # the init model's architecture wins


def test_sampling_prefers_the_sample_slab(tmp_path: Path) -> None:
    data = blob_volume(seed=2, shape=(60, 48, 48), slab=True)
    source = make_source(Volume(data, 10.0, None), 10.0, crop_size=8, uniform_fraction=0.0)
    sampler = CropSampler([source], half_extent_world=6)
    gen = torch.Generator().manual_seed(0)
    z = np.array([sampler.sample_centre(gen)[1][0] for _ in range(300)])
    assert np.mean((z >= 16) & (z < 44)) > 0.8  # blobs live in z 20..40, the rest is noise
    assert content_map(data, 4).shape == (15, 12, 12)


def test_sampling_reads_memory_maps_at_another_voxel_size(tmp_path: Path) -> None:
    path = write_tomogram(tmp_path / "t.mrc", blob_volume(seed=3, shape=(40, 64, 64)), 5.0)
    volume = read_tomogram(path)
    source = make_source(volume, 10.0, crop_size=8)
    assert source.voxels_per_world == 2.0 and source.bin_factor == 2
    sampler = CropSampler([source], half_extent_world=6)
    blocks, ratios = sampler.sample(3, torch.Generator().manual_seed(0))
    assert blocks.shape == (3, 1, 13, 13, 13) and torch.all(ratios == 1.0)
    assert isinstance(volume.data, np.memmap)


def test_learning_rate_schedule() -> None:
    config = tiny_config(steps=100, warmup_steps=10, learning_rate=1.0)
    rates = [learning_rate_at(step, config) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert rates[-1] == pytest.approx(0.05, abs=0.01) and all(r > 0 for r in rates)


# -- CLI -------------------------------------------------------------------------------------


def test_cli_train_writes_a_model_and_resumes(tmp_path: Path, capsys) -> None:
    tomogram = write_tomogram(tmp_path / "t.mrc", blob_volume(seed=4), 10.0)
    out = tmp_path / "model.pt"
    args = [
        "train", str(tomogram), "--out", str(out), "--device", "cpu", "--steps", "2",
        "--crop-size", "16", "--batch-size", "2", "--seed", "3", "--threads", "1",
    ]  # fmt: skip
    assert main(args) == 0
    assert load_checkpoint(out).training_state["step"] == 2
    assert main(args) == 2
    assert "exists already" in capsys.readouterr().err
    assert main([*args[:-6], "--steps", "3", "--resume", "--threads", "1"]) == 0
    assert load_checkpoint(out).training_state["step"] == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "cuda:7"], "device"),
        (["--init", "missing.pt"], "no such checkpoint"),
        (["--crop-size", "15"], "crop size"),
    ],
)
def test_cli_train_bad_input_is_one_line(
    tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    tomogram = write_tomogram(tmp_path / "t.mrc", blob_volume(seed=5), 10.0)
    code = main(["train", str(tomogram), "--out", str(tmp_path / "m.pt"), "--steps", "1", *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_train_missing_tomogram(tmp_path: Path, capsys) -> None:
    assert main(["train", str(tmp_path / "none.mrc"), "--out", str(tmp_path / "m.pt")]) == 2
    assert "no such file" in capsys.readouterr().err
