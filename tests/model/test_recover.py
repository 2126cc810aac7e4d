"""Rebuilding the torch networks from the shipped ONNX files (needs the ``train`` extra: torch)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (the train extra) is not installed")
ort = pytest.importorskip("onnxruntime")

from vision.model.detector import default_model_path, model_files  # noqa: E402
from vision.model.export import export_keypoints_onnx  # noqa: E402
from vision.model.network import DetectorExportWrapper, DogPoseNet  # noqa: E402
from vision.model.recover import load_onnx_weights, recover_network  # noqa: E402


def _onnx(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("role", ["keypoints", "detector"])
def test_recovered_network_matches_shipped_onnx(role):
    net = recover_network(default_model_path(), role).eval()
    module = net if role == "keypoints" else DetectorExportWrapper(net)
    x = np.random.default_rng(5).uniform(0, 255, (2, 3, 96, 160)).astype(np.float32)
    ref = _onnx(model_files(default_model_path())[role], x)
    with torch.no_grad():
        ours = module(torch.from_numpy(x)).numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4 * np.abs(ref).max())
    # a fresh network of the same architecture is far from it: the comparison has teeth
    fresh = (type(net)(pretrained=False) if role == "keypoints" else DetectorExportWrapper(DogPoseNet(False))).eval()
    with torch.no_grad():
        assert np.abs(fresh(torch.from_numpy(x)).numpy() - ref).max() > 0.05 * np.abs(ref).max()


def test_recovered_keypoint_network_exports_back_to_the_same_function(tmp_path):
    net = recover_network(default_model_path(), "keypoints")
    out = export_keypoints_onnx(net, tmp_path / "kp.onnx")
    x = np.random.default_rng(6).uniform(0, 255, (1, 3, 128, 128)).astype(np.float32)
    ref = _onnx(model_files(default_model_path())["keypoints"], x)
    np.testing.assert_allclose(_onnx(out, x), ref, atol=1e-4 * np.abs(ref).max())


def test_wrong_architecture_is_refused():
    detector = DetectorExportWrapper(DogPoseNet(pretrained=False)).eval()
    with pytest.raises(ValueError, match="convolutions"):
        load_onnx_weights(detector, model_files(default_model_path())["keypoints"], 64)
