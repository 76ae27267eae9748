"""The dense 3D encoder: a small fully convolutional network sized for CPU inference.

Input ``(B, 1, Z, Y, X)`` float (a normalised tomogram at the model's working voxel size),
output ``(B, C, Z/s, Y/s, X/s)`` with ``s = stride`` (rounded up when a size is not a multiple of
``s``: the input is then padded at its far end by repeating the last voxels). Feature voxel ``i`` describes the input block ``[s*i, s*i + s)``: its centre sits at input
coordinate ``s*i + offset`` with ``offset = (s - 1) / 2``.

Layout: a strided stem (one 4³ convolution of stride 2 per factor of 2, which keeps the feature
centres on the block centres), ``depth`` residual 3³ convolutions with growing dilation for
context at low cost, and a 1³ convolution to the embedding. BatchNorm everywhere, so a network in
eval mode computes each voxel from its receptive field only: tiles give the same result as a
whole volume as long as they overlap by ``receptive_field // 2`` input voxels on each side.
"""

import copy
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

ALLOWED_STRIDES = (1, 2, 4)


@dataclass
class EncoderConfig:
    """Everything needed to rebuild a :class:`DenseEncoder` (stored in checkpoints)."""

    stride: int = 2
    width: int = 16
    depth: int = 4
    dilations: tuple[int, ...] = (1, 2, 3, 4)
    embedding_dim: int = 24
    separable: bool = False
    stem_width: int = 0
    """Channels after the first stem layer when ``stride == 4`` (0 = ``width // 2``)."""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dilations = tuple(int(d) for d in self.dilations)
        if self.stride not in ALLOWED_STRIDES:
            raise ValueError(f"encoder stride must be one of {ALLOWED_STRIDES}, got {self.stride}")
        if self.width < 1 or self.embedding_dim < 1 or self.depth < 0:
            raise ValueError("encoder width and embedding_dim must be positive, depth >= 0")
        if len(self.dilations) != self.depth:
            raise ValueError(
                f"need one dilation per layer: depth {self.depth}, dilations {self.dilations}"
            )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["dilations"] = list(self.dilations)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "EncoderConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown encoder settings {sorted(unknown)}")
        return cls(**data)


class ConvBlock(nn.Module):
    """3³ convolution (optionally depthwise-separable) + BatchNorm + ReLU, residual when shapes match."""

    def __init__(self, channels_in: int, channels_out: int, dilation: int, separable: bool):
        super().__init__()
        if separable:
            self.conv = nn.Sequential(
                nn.Conv3d(
                    channels_in,
                    channels_in,
                    3,
                    padding=dilation,
                    dilation=dilation,
                    groups=channels_in,
                    bias=False,
                ),
                nn.Conv3d(channels_in, channels_out, 1, bias=False),
            )
        else:
            self.conv = nn.Conv3d(
                channels_in, channels_out, 3, padding=dilation, dilation=dilation, bias=False
            )
        self.norm = nn.BatchNorm3d(channels_out)
        self.act = nn.ReLU(inplace=True)
        self.residual = channels_in == channels_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm(self.conv(x)))
        return x + y if self.residual else y


def _stem(config: EncoderConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    if config.stride == 1:
        layers += [
            nn.Conv3d(1, config.width, 3, padding=1, bias=False),
            nn.BatchNorm3d(config.width),
        ]
        layers.append(nn.ReLU(inplace=True))
        return nn.Sequential(*layers)
    n_down = {2: 1, 4: 2}[config.stride]
    widths = (
        [config.width]
        if n_down == 1
        else [config.stem_width or max(1, config.width // 2), config.width]
    )
    channels = 1
    for width in widths:
        layers += [
            nn.Conv3d(channels, width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm3d(width),
        ]
        layers.append(nn.ReLU(inplace=True))
        channels = width
    return nn.Sequential(*layers)


def receptive_field_of(module: nn.Module) -> int:
    """Receptive field (input voxels along one axis) of a chain of convolutions.

    Walks the Conv3d layers in order, skipping pointwise ones; residual branches do not widen it.
    """
    field_size, jump = 1, 1
    for layer in module.modules():
        if isinstance(layer, nn.Conv3d):
            k, d, s = layer.kernel_size[0], layer.dilation[0], layer.stride[0]
            field_size += (k - 1) * d * jump
            jump *= s
    return field_size


class DenseEncoder(nn.Module):
    """Fully convolutional 3D encoder ``(B,1,Z,Y,X) -> (B,embedding_dim,Z/s,Y/s,X/s)``.

    Attributes used by detection:

    - ``stride``: downsampling factor ``s`` (1, 2 or 4);
    - ``offset``: centre of feature voxel ``i`` is at input coordinate ``stride*i + offset``;
    - ``embedding_dim``: channels of the output;
    - ``receptive_field``: input voxels (per axis) that influence one output voxel; tiles must
      overlap by at least ``receptive_field // 2`` voxels on each side to match a whole-volume pass;
    - ``config``: the :class:`EncoderConfig` it was built from.
    """

    def __init__(self, config: EncoderConfig | None = None):
        super().__init__()
        self.config = config or EncoderConfig()
        self.stem = _stem(self.config)
        blocks = [
            ConvBlock(self.config.width, self.config.width, d, self.config.separable)
            for d in self.config.dilations
        ]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Conv3d(self.config.width, self.config.embedding_dim, 1)
        self.stride = self.config.stride
        self.offset = (self.stride - 1) / 2
        self.embedding_dim = self.config.embedding_dim
        self.receptive_field = receptive_field_of(self)
        self.channels_last = False
        self.contiguous_output = True
        """Channels-last outputs are copied to the standard layout (False: returned as they are)."""

    def use_channels_last(self, enabled: bool = True) -> "DenseEncoder":
        """Run in the channels-last 3D memory layout (about 1.4× faster on CPU; same results).

        Output tensors are returned in the standard (contiguous) layout either way.
        """
        self.channels_last = enabled
        return self.to(memory_format=torch.channels_last_3d if enabled else torch.contiguous_format)

    @property
    def feature_width(self) -> int:
        """Channels of the body features (before the embedding head)."""
        return self.config.width

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Body features before the 1³ embedding head ``(B, width, Z/s, Y/s, X/s)``."""
        if x.ndim != 5 or x.shape[1] != 1:
            raise ValueError(f"expected input of shape (B, 1, Z, Y, X), got {tuple(x.shape)}")
        pads = [(-n) % self.stride for n in x.shape[2:]]
        if any(pads):
            x = nn.functional.pad(x, (0, pads[2], 0, pads[1], 0, pads[0]), mode="replicate")
        return self.body(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
            out = self.head(self.features(x))
            return out.contiguous() if self.contiguous_output else out
        return self.head(self.features(x))

    def output_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """Output spatial shape for an input of spatial shape ``shape`` (z, y, x)."""
        return tuple(-(-int(n) // self.stride) for n in shape)  # type: ignore[return-value]


def _fold_batch_norms(module: nn.Module) -> None:
    """Fold every BatchNorm3d that directly follows a Conv3d into it (in place, eval mode)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for child in module.children():
        _fold_batch_norms(child)
    if isinstance(module, ConvBlock):
        if isinstance(module.conv, nn.Sequential):
            module.conv[-1] = fuse_conv_bn_eval(module.conv[-1], module.norm)
        else:
            module.conv = fuse_conv_bn_eval(module.conv, module.norm)
        module.norm = nn.Identity()
    elif isinstance(module, nn.Sequential):
        layers = list(module)
        for i in range(len(layers) - 1):
            if isinstance(layers[i], nn.Conv3d) and isinstance(layers[i + 1], nn.BatchNorm3d):
                module[i] = fuse_conv_bn_eval(layers[i], layers[i + 1])
                module[i + 1] = nn.Identity()


def fused_for_inference(encoder: nn.Module) -> nn.Module:
    """A copy of ``encoder`` in eval mode with each BatchNorm folded into the convolution before
    it: the same function (to float rounding) with a fifth fewer passes over the activations.

    Only for inference: the copy cannot be trained as the original would, and its channels-last
    outputs are not copied to the standard layout (the caller reads them with any strides).
    Encoders that are not a :class:`DenseEncoder` are returned as they are (in eval mode).
    """
    if not isinstance(encoder, DenseEncoder):
        return encoder.eval()
    fused = copy.deepcopy(encoder).eval()
    _fold_batch_norms(fused)
    if fused.channels_last:
        fused.use_channels_last(True)
    fused.contiguous_output = False  # detection reads the output as numpy, whatever its strides
    return fused


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
