"""MoveNet's trunk rebuilt in torch (needs the ``train`` extra: torch)."""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (the train extra) is not installed")
ort = pytest.importorskip("onnxruntime")

from hindsight_training.export import export_keypoints_onnx  # noqa: E402
from hindsight_training.movenet import (  # noqa: E402
    MOVENET_ENV,
    MoveNetKeypointNet,
    _conv,
    _copy,
    default_weights_path,
    read_tfjs_weights,
)
from hindsight_training.network import keypoint_network  # noqa: E402
from hindsight_training.recover import load_onnx_weights  # noqa: E402


def _write_tfjs(folder, specs_and_bytes, shards=2):
    """A TF.js graph model file whose weight data is split over ``shards`` files."""
    data = b"".join(raw for _, raw in specs_and_bytes)
    cut = len(data) // 2
    parts = [data[:cut], data[cut:]] if shards == 2 else [data]
    paths = []
    for i, part in enumerate(parts):
        name = f"group1-shard{i + 1}of{len(parts)}.bin"
        (folder / name).write_bytes(part)
        paths.append(name)
    weights = [spec for spec, _ in specs_and_bytes]
    manifest = {"format": "graph-model", "weightsManifest": [{"paths": paths, "weights": weights}]}
    path = folder / "model.json"
    path.write_text(json.dumps(manifest))
    return path


def test_tfjs_weights_are_decoded_by_their_stored_dtype(tmp_path):
    half = np.array([[0.5, -1.25], [3.0, 1e-3]], np.float16)
    codes = np.array([0, 128, 255], np.uint8)
    uint8 = {"dtype": "uint8", "scale": 0.5, "min": -1.0}
    ints = np.array([7, -2], np.int32)
    full = np.array([1.5, 2.5, 3.5], np.float32)
    path = _write_tfjs(
        tmp_path,
        [
            ({"name": "h", "shape": [2, 2], "dtype": "float32", "quantization": {"dtype": "float16"}}, half.tobytes()),
            ({"name": "q", "shape": [3], "dtype": "float32", "quantization": uint8}, codes.tobytes()),
            ({"name": "i", "shape": [2], "dtype": "int32"}, ints.tobytes()),
            ({"name": "f", "shape": [3], "dtype": "float32"}, full.tobytes()),
        ],
    )
    weights = read_tfjs_weights(path)
    np.testing.assert_array_equal(weights["h"], half.astype(np.float32))
    np.testing.assert_allclose(weights["q"], [-1.0, 63.0, 126.5])
    np.testing.assert_array_equal(weights["i"], ints)
    assert weights["i"].dtype == np.int32
    np.testing.assert_array_equal(weights["f"], full)


def test_truncated_tfjs_weights_are_refused(tmp_path):
    spec = {"name": "f", "shape": [4], "dtype": "float32"}
    path = _write_tfjs(tmp_path, [(spec, np.zeros(3, np.float32).tobytes())], 1)
    with pytest.raises(ValueError, match="ends before 'f'"):
        read_tfjs_weights(path)


def _tf_conv(x, kernel, stride):
    """TensorFlow's ``SAME`` conv2d of one (C, H, W) image by a (kh, kw, in, out) kernel, in numpy."""
    kh, kw = kernel.shape[:2]
    c, h, w = x.shape
    # TF: output ceil(n / stride), padding split with the extra row/column after
    oh, ow = -(-h // stride), -(-w // stride)
    ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - w, 0)
    x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))
    out = np.zeros((kernel.shape[3], oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, i, j] = np.einsum("chw,hwco->o", patch, kernel)
    return out


@pytest.mark.parametrize("stride", [1, 2])
def test_a_tensorflow_kernel_copied_into_torch_gives_tensorflows_same_convolution(stride):
    rng = np.random.default_rng(stride)
    x = rng.normal(size=(3, 8, 8)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 3, 5)).astype(np.float32)
    bias = rng.normal(size=5).astype(np.float32)
    module = _conv(3, 5, 3, stride)
    conv = module[1] if isinstance(module, torch.nn.Sequential) else module
    _copy(conv, kernel, bias)
    got = module(torch.from_numpy(x)[None])[0].detach().numpy()
    want = _tf_conv(x, kernel, stride) + bias[:, None, None]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_tensorflow_depthwise_kernel_filters_each_channel_alone():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 6, 6)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 4, 1)).astype(np.float32)
    module = _conv(4, 4, 3, 2, groups=4, bias=False)
    _copy(module[1], kernel, None, depthwise=True)
    got = module(torch.from_numpy(x)[None])[0].detach().numpy()
    for channel in range(4):
        want = _tf_conv(x[channel : channel + 1], kernel[:, :, channel : channel + 1, :], 2)[0]
        np.testing.assert_allclose(got[channel], want, rtol=1e-4, atol=1e-4)


def test_a_kernel_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        _copy(torch.nn.Conv2d(3, 5, 1), np.zeros((1, 1, 4, 5), np.float32), None)


def test_the_network_maps_crops_to_stride_4_heatmaps_and_exports_to_onnx(tmp_path):
    net = keypoint_network({"backbone": "movenet-lightning"}).eval()
    assert isinstance(net, MoveNetKeypointNet)
    trained = {id(p) for p in net.backbone_parameters()}
    fresh = {id(p) for p in net.head_parameters()}
    assert not trained & fresh and trained | fresh == {id(p) for p in net.parameters()}
    with torch.no_grad():
        for p in net.parameters():  # random weights everywhere, so the test sees every layer
            p.add_(torch.randn_like(p) * 0.05)
    rng = np.random.default_rng(0)
    for size in (192, 256):
        x = rng.uniform(0, 255, (2, 3, size, size)).astype(np.float32)
        with torch.no_grad():
            heat = net(torch.from_numpy(x)).numpy()
        assert heat.shape == (2, 20, size // 4, size // 4)
    out = export_keypoints_onnx(net, tmp_path / "kp.onnx", {"backbone": "movenet-lightning", "crop_sizes": [192]})
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = rng.uniform(0, 255, (1, 3, 192, 192)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = sess.run(["kp"], {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * float(np.abs(want).max()))
    rebuilt = MoveNetKeypointNet(pretrained=False).eval()  # what --init MANIFEST does with a shipped file
    load_onnx_weights(rebuilt, out, 128)
    with torch.no_grad():
        again = rebuilt(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(again, want, rtol=1e-3, atol=1e-3 * float(np.abs(want).max()))


def test_the_weights_file_must_be_named(monkeypatch, tmp_path):
    monkeypatch.delenv(MOVENET_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=MOVENET_ENV):
        default_weights_path()
    monkeypatch.setenv(MOVENET_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError):
        MoveNetKeypointNet(pretrained=True)


@pytest.mark.skipif(not os.path.isfile(os.environ.get(MOVENET_ENV, "")), reason=f"{MOVENET_ENV} names no MoveNet file")
def test_movenet_weights_fill_every_trained_layer():
    fresh = MoveNetKeypointNet(pretrained=False)
    loaded = MoveNetKeypointNet(pretrained=True)
    for (name, a), (_, b) in zip(fresh.named_parameters(), loaded.named_parameters(), strict=True):
        if name.startswith("kp_head"):
            continue
        assert not torch.equal(a, b), f"{name} was not loaded"
