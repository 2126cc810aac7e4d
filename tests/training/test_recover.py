"""Rebuilding the torch networks from the shipped ONNX files (needs the ``train`` extra: torch)."""

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (the train extra) is not installed")
ort = pytest.importorskip("onnxruntime")

from hindsight_training.export import export_detector_onnx, export_keypoints_onnx, quantize_int8  # noqa: E402
from hindsight_training.network import DetectorExportWrapper, DogPoseNet  # noqa: E402
from hindsight_training.recover import is_quantized, load_onnx_weights, module_path, recover_network  # noqa: E402
from vision.model.manifest import default_model_path, model_files  # noqa: E402


def _onnx(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _smooth_images(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """(n, 3, h, w) float32 0..255: upsampled coarse noise, image-like for int8 activation ranges."""
    rng = np.random.default_rng(seed)
    out = [cv2.resize(rng.uniform(0, 255, (6, 6, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)]
    for _ in range(n - 1):
        out.append(cv2.resize(rng.uniform(0, 255, (6, 6, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC))
    return np.stack(out).clip(0, 255).transpose(0, 3, 1, 2).astype(np.float32)


def _corr(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_module_path_follows_the_exporter_scopes():
    assert module_path("/stem/stem.0/Conv") == "stem.0"
    assert module_path("/blocks.3/_depthwise_conv/Conv") == "blocks.3._depthwise_conv"
    assert module_path("/det_head/det_head.0/det_head.0.1/Conv") == "det_head.0.1"
    assert module_path("/kp_head/Conv") == "kp_head"


@pytest.mark.parametrize("role", ["keypoints", "detector"])
def test_recovered_network_matches_shipped_onnx(role):
    from hindsight_training.network import keypoint_network
    from hindsight_training.recover import shipped_training

    net = recover_network(default_model_path(), role).eval()
    module = net if role != "detector" else DetectorExportWrapper(net)
    x = _smooth_images(2, 96, 160, seed=5)
    path = model_files(default_model_path())[role]
    ref = _onnx(path, x)
    with torch.no_grad():
        ours = module(torch.from_numpy(x)).numpy()
    assert ours.shape == ref.shape
    if is_quantized(path):
        assert _corr(ours, ref) > 0.95
    else:
        np.testing.assert_allclose(ours, ref, atol=1e-4 * np.abs(ref).max())
    # a fresh network of the same architecture is far from it: the comparison has teeth
    summary = shipped_training(default_model_path(), role)
    fresh = (keypoint_network(summary) if role != "detector" else DetectorExportWrapper(DogPoseNet(False))).eval()
    with torch.no_grad():
        assert _corr(fresh(torch.from_numpy(x)).numpy(), ref) < 0.9


def test_recovered_keypoint_network_exports_back_to_the_same_function(tmp_path):
    net = recover_network(default_model_path(), "keypoints").eval()
    out = export_keypoints_onnx(net, tmp_path / "kp.onnx")
    x = _smooth_images(1, 128, 128, seed=6)
    with torch.no_grad():
        ours = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_onnx(out, x), ours, atol=1e-4 * np.abs(ours).max())


def test_skip_keypoint_network_is_recovered_from_its_onnx_file(tmp_path):
    """A network with skip connections: the manifest's training summary says so, recovery rebuilds it."""
    import json

    from hindsight_training.network import keypoint_network

    summary = {"backbone": "efficientnet-lite0", "skips": True, "crop_sizes": [128]}
    net = keypoint_network(summary).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    export_keypoints_onnx(net, tmp_path / "dog_keypoints.onnx", summary)
    manifest = tmp_path / "dog_pose.json"
    manifest.write_text(json.dumps({"files": {"keypoints": "dog_keypoints.onnx"}, "training": {"keypoints": summary}}))
    again = recover_network(manifest, "keypoints").eval()
    assert again.skip_taps == net.skip_taps
    x = torch.from_numpy(_smooth_images(1, 96, 96, seed=9))
    with torch.no_grad():
        np.testing.assert_allclose(again(x).numpy(), net(x).numpy(), atol=1e-4 * float(net(x).abs().max()))


def test_quantized_detector_is_read_back_by_module_path(tmp_path):
    """Quantization re-sorts the graph (the FPN's branches): weights still reach their own modules."""
    net = DogPoseNet(pretrained=False).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    fp32 = export_detector_onnx(net, tmp_path / "det.onnx")
    int8 = quantize_int8(fp32, tmp_path / "det_int8.onnx", list(_smooth_images(4, 128, 128, seed=7)[:, None]))
    again = DetectorExportWrapper(DogPoseNet(pretrained=False)).eval()
    load_onnx_weights(again, int8, 64)
    x = torch.from_numpy(_smooth_images(2, 96, 128, seed=8))
    with torch.no_grad():
        want, got = DetectorExportWrapper(net)(x).numpy(), again(x).numpy()
    # int8 weights only (the torch network runs in float): close, where one misplaced conv would not be
    assert _corr(got, want) > 0.999
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()


def test_wrong_architecture_is_refused():
    detector = DetectorExportWrapper(DogPoseNet(pretrained=False)).eval()
    with pytest.raises(ValueError, match="convolutions"):
        load_onnx_weights(detector, model_files(default_model_path())["keypoints"], 64)


def test_keypoint_ensemble_is_one_onnx_graph_recovered_member_by_member(tmp_path):
    """An ensemble (plain + skips) exports as one graph giving the members' mean; recovery rebuilds both members."""
    import json

    from hindsight_training.network import KeypointEnsemble, keypoint_network

    members = [{"skips": False, "crop_sizes": [128]}, {"skips": True, "crop_sizes": [128]}]
    summary = {"members": members, "crop_sizes": [128]}
    torch.manual_seed(3)
    net = keypoint_network(summary).eval()
    assert isinstance(net, KeypointEnsemble) and len(net.members) == 2
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    x = torch.from_numpy(_smooth_images(1, 96, 96, seed=4))
    with torch.no_grad():
        mean = 0.5 * (net.members[0](x) + net.members[1](x))
        torch.testing.assert_close(net(x), mean)
        assert not torch.allclose(net.members[0](x), mean, atol=1e-3)  # the members differ: the mean is a real mix
    export_keypoints_onnx(net, tmp_path / "dog_keypoints.onnx", summary)
    np.testing.assert_allclose(_onnx(tmp_path / "dog_keypoints.onnx", x.numpy()), mean.numpy(), atol=1e-4)
    manifest = tmp_path / "dog_pose.json"
    manifest.write_text(json.dumps({"files": {"keypoints": "dog_keypoints.onnx"}, "training": {"keypoints": summary}}))
    again = recover_network(manifest, "keypoints").eval()
    assert isinstance(again, KeypointEnsemble)
    with torch.no_grad():
        for ours, theirs in zip(again.members, net.members, strict=True):
            np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), atol=1e-4 * float(theirs(x).abs().max()))
    # A shipped ensemble joined by another network contributes its members: three equal members, not 1/4, 1/4, 1/2.
    from hindsight_training.export import keypoint_ensemble

    third = tmp_path / "third.pt"
    torch.save({"model": keypoint_network(members[0]).state_dict(), "summary": members[0]}, third)
    joined, joined_summary = keypoint_ensemble([manifest, third])
    assert len(joined.members) == 3 and [m["skips"] for m in joined_summary["members"]] == [False, True, False]
    with torch.no_grad():
        for ours, theirs in zip(joined.members[:2], net.members, strict=True):
            np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), atol=1e-4 * float(theirs(x).abs().max()))


def test_an_ensemble_needs_two_members():
    from hindsight_training.network import KeypointEnsemble, KeypointNet

    with pytest.raises(ValueError, match="at least two"):
        KeypointEnsemble([KeypointNet(pretrained=False)])
