"""Model basics: device choice, encoder shapes and receptive field, normalisation, checkpoints."""

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoet_particles import __version__
from napari_cryoet_particles.io import CryoetInputError, read_tomogram, write_tomogram
from napari_cryoet_particles.model import (
    DenseEncoder,
    EncoderConfig,
    ModelConfig,
    available_devices,
    configure_threads,
    default_model_path,
    load_checkpoint,
    normalize,
    robust_stats,
    save_checkpoint,
    select_device,
)
from napari_cryoet_particles.model import checkpoint as checkpoint_module

TINY = EncoderConfig(stride=2, width=4, depth=2, dilations=(1, 2), embedding_dim=5)


# -- device ----------------------------------------------------------------------------------


def test_auto_device_is_one_that_exists() -> None:
    names = available_devices()
    assert names[:2] == ["auto", "cpu"]
    assert select_device("auto").type in {"cpu", "cuda", "mps"}
    assert select_device("CPU") == torch.device("cpu")
    assert select_device(None) == select_device("auto")


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "mps:0", ""])
def test_unknown_device_is_refused(name: str) -> None:
    if name == "":
        assert select_device(name) == select_device("auto")
        return
    with pytest.raises(CryoetInputError, match="device"):
        select_device(name)


def test_missing_gpu_is_a_clear_error() -> None:
    if "cuda" in available_devices():
        assert select_device("cuda").type == "cuda"
    else:
        with pytest.raises(CryoetInputError, match="not available"):
            select_device("cuda")


def test_configure_threads_sets_torch() -> None:
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1
        assert torch.get_num_threads() == 1
        assert configure_threads(None) >= 1
        with pytest.raises(CryoetInputError):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)


# -- encoder ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize("shape", [(8, 12, 16), (9, 13, 7)])
def test_encoder_output_shape(stride: int, shape: tuple[int, int, int]) -> None:
    config = EncoderConfig(stride=stride, width=4, depth=1, dilations=(1,), embedding_dim=3)
    encoder = DenseEncoder(config).eval()
    with torch.no_grad():
        out = encoder(torch.randn(2, 1, *shape))
    expected = tuple(-(-n // stride) for n in shape)
    assert tuple(out.shape) == (2, 3, *expected)
    assert encoder.output_shape(shape) == expected
    assert encoder.offset == (stride - 1) / 2
    assert encoder.config == config and encoder.embedding_dim == 3


def test_receptive_field_bounds_the_influence_of_a_voxel() -> None:
    """Changing one input voxel changes outputs only within receptive_field // 2 of it."""
    encoder = DenseEncoder(TINY).eval()
    x = torch.randn(1, 1, 40, 40, 40)
    y = x.clone()
    y[0, 0, 20, 20, 20] += 10.0
    with torch.no_grad():
        changed = (encoder(x) - encoder(y)).abs().amax(dim=1)[0] > 0
    index = torch.nonzero(changed).float()
    centres = index * encoder.stride + encoder.offset
    reach = (centres - 20).abs().amax()
    assert 0 < reach <= encoder.receptive_field / 2
    assert reach >= encoder.receptive_field / 2 - encoder.stride  # the bound is tight


def test_tiles_with_half_receptive_field_overlap_match_the_whole_volume() -> None:
    encoder = DenseEncoder(TINY).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    margin = encoder.receptive_field // 2 + encoder.stride
    margin += (-margin) % encoder.stride
    with torch.no_grad():
        whole = encoder(x)
        tile = encoder(x[..., : 16 + margin])
    keep = 16 // encoder.stride
    torch.testing.assert_close(tile[..., :keep], whole[..., :keep], rtol=1e-4, atol=1e-5)


def test_channels_last_gives_the_same_embedding() -> None:
    encoder = DenseEncoder(TINY).eval()
    x = torch.randn(1, 1, 12, 14, 16)
    with torch.no_grad():
        plain = encoder(x)
        fast = encoder.use_channels_last()(x)
    assert fast.is_contiguous()
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "config",
    [
        TINY,
        EncoderConfig(stride=4, width=6, depth=2, dilations=(1, 2), embedding_dim=5),
        EncoderConfig(stride=1, width=4, depth=1, dilations=(1,), embedding_dim=3, separable=True),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norms_folded_for_inference_give_the_same_embedding(
    config: EncoderConfig, channels_last: bool
) -> None:
    from torch import nn

    from napari_cryoet_particles.model.encoder import fused_for_inference

    torch.manual_seed(0)
    encoder = DenseEncoder(config)
    for module in encoder.modules():  # running statistics and affine terms far from identity
        if isinstance(module, nn.BatchNorm3d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.5, 0.5)
    encoder.eval().use_channels_last(channels_last)
    fused = fused_for_inference(encoder)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm3d) for m in encoder.modules())  # the original is kept
    assert fused.receptive_field == encoder.receptive_field and fused.stride == encoder.stride
    x = torch.randn(1, 1, 12, 14, 16)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), encoder(x), rtol=1e-4, atol=1e-4)


def test_bad_encoder_config_is_refused() -> None:
    with pytest.raises(ValueError, match="stride"):
        EncoderConfig(stride=3)
    with pytest.raises(ValueError, match="dilation"):
        EncoderConfig(depth=2, dilations=(1,))
    with pytest.raises(ValueError, match="unknown"):
        EncoderConfig.from_dict({"width": 4, "colour": "red"})


# -- normalisation ---------------------------------------------------------------------------


def test_robust_stats_on_a_memory_mapped_tomogram(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, (20, 30, 40)).astype(np.float32)
    data[0, 0, :5] = 1e6  # outliers barely move a robust estimate
    path = write_tomogram(tmp_path / "t.mrc", data, 10.0)
    stats = robust_stats(read_tomogram(path).data)
    assert stats.center == pytest.approx(3.0, abs=0.05)
    assert stats.scale == pytest.approx(2.0, rel=0.05)
    out = normalize(data, stats)
    assert out.dtype == np.float32 and out.max() == stats.clip
    assert np.median(out) == pytest.approx(0.0, abs=0.05)
    tensor = normalize(torch.from_numpy(data), stats)
    np.testing.assert_allclose(tensor.numpy(), out, rtol=1e-5, atol=1e-5)


def test_constant_volume_is_refused() -> None:
    with pytest.raises(CryoetInputError, match="constant"):
        robust_stats(np.ones((4, 5, 6), dtype=np.float32))


# -- checkpoints -----------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, DenseEncoder]:
    torch.manual_seed(0)
    encoder = DenseEncoder(TINY)
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        encoder.train()(torch.randn(2, 1, 8, 8, 8))
    config = ModelConfig(encoder=TINY, working_voxel_size=12.5, training={"steps": 3})
    path = save_checkpoint(tmp_path / "model.pt", encoder, config, metadata={"note": "test"})
    return path, encoder.eval()


def test_checkpoint_round_trip(saved: tuple[Path, DenseEncoder]) -> None:
    path, encoder = saved
    loaded = load_checkpoint(path)
    assert not loaded.encoder.training and loaded.encoder.channels_last  # faster on CPU
    assert loaded.config.encoder == TINY
    assert loaded.working_voxel_size == 12.5
    assert loaded.normalization["method"] == "robust_zscore"
    assert loaded.package_version == __version__ and loaded.metadata == {"note": "test"}
    x = torch.randn(1, 1, 10, 12, 14)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encoder(x), encoder(x))


def test_checkpoint_is_not_overwritten_unless_asked(saved: tuple[Path, DenseEncoder]) -> None:
    path, encoder = saved
    with pytest.raises(CryoetInputError, match="exists"):
        save_checkpoint(path, encoder, ModelConfig(encoder=TINY))
    save_checkpoint(path, encoder, ModelConfig(encoder=TINY), overwrite=True)
    assert load_checkpoint(path).working_voxel_size == 10.0


class Foreign:
    """Stands for an arbitrary pickled object that weights_only loading must refuse."""


def _rewrite(path: Path, change) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("not a model\n"), "corrupt, truncated or not a torch file"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "corrupt, truncated"),
        (lambda p: torch.save({"state_dict": {}}, p), "not a napari-cryoet-particles checkpoint"),
        (lambda p: torch.save([1, 2, 3], p), "not a napari-cryoet-particles checkpoint"),
        (lambda p: p.write_bytes(pickle.dumps(Foreign())), "not a"),
        (lambda p: torch.save({"x": Foreign()}, p), "refused to unpickle"),
        (lambda p: _rewrite(p, lambda d: d.update(format_version=99)), "format version 99"),
        (lambda p: _rewrite(p, lambda d: d.pop("encoder")), "missing encoder"),
        (lambda p: _rewrite(p, lambda d: d["config"]["encoder"].update(width=7)), "do not match"),
        (
            lambda p: _rewrite(p, lambda d: d["config"].pop("working_voxel_size")),
            "config is invalid",
        ),
    ],
)
def test_bad_checkpoints_are_refused_with_the_file_name(saved, make, message: str) -> None:
    path, _ = saved
    make(path)
    with pytest.raises(CryoetInputError, match=message) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)


def test_missing_checkpoint_and_folder(tmp_path: Path) -> None:
    with pytest.raises(CryoetInputError, match="no such"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CryoetInputError, match="folder"):
        load_checkpoint(tmp_path)


def test_default_model_path_is_inside_the_package() -> None:
    path = default_model_path()
    assert path.name == "default_model.pt"
    assert path.parent == Path(checkpoint_module.__file__).resolve().parent.parent / "data"


def test_freed_memory_is_returned_promptly_under_glibc() -> None:
    import platform

    from napari_cryoet_particles.model.device import return_freed_memory_promptly

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert return_freed_memory_promptly() is glibc
    assert return_freed_memory_promptly() is glibc  # idempotent
