"""Export helpers: float16 storage, int8 quantization, the manifest's box margins (needs onnx, not torch)."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="training tests need torch (the train extra)")

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hindsight_training.export import quantize_int8, store_weights_fp16  # noqa: E402
from hindsight_training.recover import is_quantized  # noqa: E402
from vision.model.engine import onnx_constants  # noqa: E402
from vision.model.manifest import default_model_path  # noqa: E402


def _conv_model(path, weight, bias):
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="/body/Conv"),
            helper.make_node("Relu", ["c"], ["y"], name="/body/Relu"),
        ],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"image": x})[0]


def test_fp16_storage_halves_weights_and_keeps_outputs(tmp_path):
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32)
    bias = rng.normal(0, 0.1, 8).astype(np.float32)
    x = rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)
    path = tmp_path / "conv.onnx"
    _conv_model(path, weight, bias)
    before, size = _run(path, x), path.stat().st_size
    store_weights_fp16(path, min_size=8)
    after = _run(path, x)
    assert path.stat().st_size < 0.75 * size
    stored = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    assert stored["w__fp16"].dtype == np.float16 and stored["b__fp16"].dtype == np.float16
    assert after.dtype == np.float32
    np.testing.assert_allclose(after, before, atol=2e-3 * np.abs(before).max())
    # not bit-identical: the weights really went through float16
    assert not np.array_equal(after, before)


def test_int8_quantization_keeps_outputs_and_weights_read_back(tmp_path):
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32)
    weight[3] *= 20  # channels of very different range: per-channel scales are needed
    bias = rng.normal(0, 0.1, 8).astype(np.float32)
    calibration = [rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(8)]
    x = rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)
    source, target = tmp_path / "conv.onnx", tmp_path / "conv_int8.onnx"
    _conv_model(source, weight, bias)
    quantize_int8(source, target, calibration)
    assert is_quantized(target) and not is_quantized(source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv.onnx", "conv_int8.onnx"]  # no leftovers
    from vision.model.engine import open_network

    # As the model runs it (float arithmetic). onnxruntime's own int8 kernels saturate on CPUs with
    # AVX2 but no VNNI: there the wide channel 3 came out up to 0.73 off (5% of the range).
    before, after = _run(source, x), open_network(target).run(x)
    np.testing.assert_allclose(after, before, atol=0.02 * np.abs(before).max())
    model = onnx.load(str(target))
    stored = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert any(v.dtype == np.int8 and v.shape == weight.shape for v in stored.values())
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert conv.name == "/body/Conv"  # node names survive: recovery pairs modules by them
    decoded = onnx_constants(model)[conv.input[1]]
    step = np.abs(weight).reshape(8, -1).max(axis=1) / 127  # one int8 step per output channel
    assert np.all(np.abs(decoded - weight).reshape(8, -1).max(axis=1) <= 0.51 * step)


def _relu6_model(path, w1, w2):
    """Conv -> ReLU6 (a Clip, as the exported networks have it) -> Conv, input ``image`` (1, 3, 16, 16)."""
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w1"], ["c1"], pads=[1, 1, 1, 1]),
            helper.make_node("Clip", ["c1", "lo", "hi"], ["a1"]),
            helper.make_node("Conv", ["a1", "w2"], ["y"], pads=[1, 1, 1, 1]),
        ],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])],
        [
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(np.array(0, np.float32), "lo"),
            numpy_helper.from_array(np.array(6, np.float32), "hi"),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def test_a_statically_quantized_network_runs_in_float_with_its_activation_ranges(tmp_path):
    """``open_network`` runs a QDQ file in float arithmetic: no int8 kernels, whose results depend on
    the CPU; each quantized activation keeps its range, which holds the ReLU6 the quantizer absorbed."""
    from vision.model.engine import open_network, weights_as_float32

    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 1.5, (8, 3, 3, 3)).astype(np.float32)  # large: many activations above 6
    w2 = rng.normal(0, 0.3, (4, 8, 3, 3)).astype(np.float32)
    calibration = [rng.uniform(0, 2, (1, 3, 16, 16)).astype(np.float32) for _ in range(8)]
    x = rng.uniform(0, 2, (1, 3, 16, 16)).astype(np.float32)
    source, target = tmp_path / "net.onnx", tmp_path / "net_int8.onnx"
    _relu6_model(source, w1, w2)
    quantize_int8(source, target, calibration)
    quantized = onnx.load(str(target))
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in quantized.graph.node}
    as_float = weights_as_float32(quantized)
    ops = {n.op_type for n in as_float.graph.node}
    assert not ops & {"QuantizeLinear", "DequantizeLinear"}
    assert "Clip" in ops
    want = _run(source, x)
    got = open_network(target).run(x)
    np.testing.assert_allclose(got, want, atol=0.03 * np.abs(want).max())
    # Without the ranges the ReLU6 would be lost: the float network without its Clip differs a lot.
    unclipped = tmp_path / "unclipped.onnx"
    _relu6_model(unclipped, w1, w2)
    model = onnx.load(str(unclipped))
    for init in model.graph.initializer:
        if init.name == "hi":
            init.CopyFrom(numpy_helper.from_array(np.array(1e9, np.float32), "hi"))
    onnx.save(model, str(unclipped))
    assert np.abs(_run(unclipped, x) - want).max() > 10 * np.abs(got - want).max()


def _instance(species, box, points):
    from hindsight_training.dataset import Instance

    kp = np.zeros((20, 3), np.float32)
    kp[: len(points), :2] = points
    kp[: len(points), 2] = 1
    return Instance(species, np.array(box, np.float32), kp)


def test_box_margins_fit_the_labelled_gaps_and_pool_left_right():
    from hindsight_training.dataset import Record
    from hindsight_training.export import fit_box_margins

    rng = np.random.default_rng(3)
    records = []
    for i in range(40):
        pts = rng.uniform(0, 1, (10, 2))
        pts[0], pts[1] = (0, 0), (1, 0.5)  # extent 1 in x (longer side), scaled below
        scale = rng.uniform(50, 300)
        pts = pts * scale + 100
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        left, right = (0.05, 0.15) if i % 2 else (0.15, 0.05)  # facing left or right
        box = [x0 - left * scale, y0 - 0.2 * scale, x1 + right * scale, y1 + 0.02 * scale]
        split = "train" if i < 30 else "val"
        records.append(
            Record(f"{i}.jpg", split, 800, 800, (_instance("dog", box, pts), _instance("cat", box, pts[:2])))
        )
    fit = fit_box_margins(records)
    side, top, side2, bottom = fit["margins"]
    assert side == side2 == pytest.approx(0.10, abs=0.051)  # pooled: between 0.05 and 0.15
    assert top == pytest.approx(0.2, abs=1e-3) and bottom == pytest.approx(0.02, abs=1e-3)
    assert fit["fitted_on"].startswith("30 training dogs")  # val split and sparse cats ignored
    with pytest.raises(ValueError, match="no training horse"):
        fit_box_margins(records, species="horse")


def test_score_fits_on_training_images_weigh_both_networks_and_bound_false_positives():
    """Calibration and threshold fitted on a few training images of ``../shared`` with the shipped networks."""
    from pathlib import Path

    from hindsight_training.export import fit_score_calibration, fit_score_threshold
    from vision.model.manifest import default_model_path

    data = Path(__file__).resolve().parents[3] / "shared" / "data" / "animalpose"
    if not data.is_dir():
        pytest.skip("../shared/data/animalpose not present")
    cal = fit_score_calibration(default_model_path(), data, n_images=40)
    # Both the detector peak and the verifier raise the odds of a dog; some candidates are dogs, most are not.
    assert cal["a"] > 0 and cal["c"] > 0
    assert 0 < cal["n_positive"] < cal["n_peaks"]
    fit = fit_score_threshold(default_model_path(), data, n_images=20, max_false_positive=0.2)
    assert 0.02 <= fit["threshold"] < 0.9
    assert fit["false_positive"] <= 0.2 and fit["found"] > 0.5


def test_score_is_fitted_on_the_detectors_holdout_when_it_had_one():
    from hindsight_training.dataset import in_score_holdout
    from hindsight_training.export import score_fit_images
    from tests.conftest import ANIMALPOSE, need_shared

    need_shared(ANIMALPOSE)
    everything = score_fit_images(ANIMALPOSE)
    held = score_fit_images(ANIMALPOSE, 15)
    assert {r.split for r in everything} == {"train"}
    assert {r.file for r in held} < {r.file for r in everything}
    assert all(in_score_holdout(r.file, 15) for r in held)
    assert len(held) / len(everything) == pytest.approx(0.15, abs=0.03)
    # Both kinds of image the fits need are there: single-dog images and dog-free ones.
    assert sum(len(r.instances) == 1 and r.instances[0].species == "dog" for r in held) >= 100
    assert sum(not any(i.species == "dog" for i in r.instances) for r in held) >= 100


def test_score_holdout_comes_from_whichever_network_held_images_out():
    from hindsight_training.export import score_holdout_of

    assert score_holdout_of({"detector": {"score_holdout_percent": 15}, "keypoints": {}}) == 15
    assert score_holdout_of({"detector": {"score_holdout_percent": None}, "verifier": {"holdout_percent": 15}}) == 15
    assert score_holdout_of({"detector": {}, "verifier": {"kind": "untrained"}}) == 0
    assert score_holdout_of({}) == 0
    with pytest.raises(ValueError, match="15% .* 20%"):
        score_holdout_of({"detector": {"score_holdout_percent": 15}, "verifier": {"holdout_percent": 20}})


def test_a_shipped_network_is_copied_byte_for_byte(tmp_path):
    import json

    from hindsight_training.export import copy_shipped_network
    from vision.model.manifest import default_model_path, model_files

    shipped = default_model_path()
    target = tmp_path / "dog_detector.onnx"
    summary = copy_shipped_network(shipped, "detector", target)
    assert target.read_bytes() == model_files(shipped)["detector"].read_bytes()
    meta = json.loads(shipped.read_text())
    trained = meta["training"]["detector"]
    assert summary["steps"] == trained["steps"] and summary["version"] == trained.get("version", meta["version"])


def test_keypoint_ensemble_of_checkpoints_keeps_their_summaries_and_refuses_mixed_crop_sizes(tmp_path):
    torch = pytest.importorskip("torch", reason="torch (the train extra) is not installed")
    from hindsight_training.export import keypoint_ensemble
    from hindsight_training.network import KeypointEnsemble, keypoint_network

    def checkpoint(name: str, summary: dict) -> Path:
        path = tmp_path / name / "best.pt"
        path.parent.mkdir()
        torch.save({"model": keypoint_network(summary).state_dict(), "summary": summary}, path)
        return path

    plain = checkpoint("plain", {"skips": False, "crop_sizes": [160, 192]})
    skips = checkpoint("skips", {"skips": True, "crop_sizes": [192]})
    net, summary = keypoint_ensemble([plain, skips])
    assert isinstance(net, KeypointEnsemble)
    assert summary["crop_sizes"] == [192] and summary["sources"] == ["plain/best.pt", "skips/best.pt"]
    assert [m["skips"] for m in summary["members"]] == [False, True]
    small = checkpoint("small", {"skips": False, "crop_sizes": [160]})
    with pytest.raises(ValueError, match="different crop sizes"):
        keypoint_ensemble([plain, small])


def test_int8_weight_storage_is_a_quarter_and_expands_back_within_half_a_step(tmp_path):
    """``store_weights_int8`` keeps float arithmetic; ``weights_as_float32`` gives the float graph back."""
    from hindsight_training.export import store_weights_int8
    from vision.model.engine import open_network, weights_as_float32

    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (16, 8, 3, 3)).astype(np.float32) * rng.uniform(0.01, 2, (16, 1, 1, 1)).astype(np.float32)
    wt = rng.normal(0, 0.1, (16, 4, 2, 2)).astype(np.float32) * np.linspace(0.1, 3, 4).reshape(1, 4, 1, 1)
    wt = wt.astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["y", "wt"], ["z"], strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 12, 12])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(wt, "wt")],
    )
    path = tmp_path / "net.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    x = rng.normal(0, 1, (1, 8, 6, 6)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    size = path.stat().st_size
    store_weights_int8(path)
    assert path.stat().st_size < 0.4 * size
    model = onnx.load(str(path))
    assert {i.name: numpy_helper.to_array(i).dtype for i in model.graph.initializer}["w__int8"] == np.int8
    # one scale per output channel: axis 0 of the Conv weight, axis 1 of the ConvTranspose weight
    scales = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("__scale")}
    np.testing.assert_allclose(scales["w__scale"], np.abs(w).reshape(16, -1).max(1) / 127, rtol=1e-6)
    np.testing.assert_allclose(scales["wt__scale"], np.abs(wt).transpose(1, 0, 2, 3).reshape(4, -1).max(1) / 127)
    expanded = weights_as_float32(model)
    assert not [n for n in expanded.graph.node if n.op_type == "DequantizeLinear"]
    weights = {i.name: numpy_helper.to_array(i) for i in expanded.graph.initializer}
    assert np.all(np.abs(weights["w"] - w) <= 0.5 * scales["w__scale"].reshape(-1, 1, 1, 1) + 1e-7)
    assert np.all(np.abs(weights["wt"] - wt) <= 0.5 * scales["wt__scale"].reshape(1, -1, 1, 1) + 1e-7)
    got = open_network(path).run(x)
    raw = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, raw, rtol=1e-5, atol=1e-5)  # the same function as the file as written
    assert 0 < np.abs(got - want).max() < 0.02 * np.abs(want).max()  # int8 rounding, small


def test_an_ensemble_file_gives_its_first_member_alone_as_the_box_network(tmp_path):
    torch = pytest.importorskip("torch", reason="torch (the train extra) is not installed")
    from hindsight_training.export import export_keypoints_onnx
    from hindsight_training.network import keypoint_network
    from vision.model.engine import open_network

    summary = {"members": [{"crop_sizes": [64]}, {"skips": True, "crop_sizes": [64]}], "crop_sizes": [64]}
    torch.manual_seed(1)
    net = keypoint_network(summary).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = export_keypoints_onnx(net, tmp_path / "kp.onnx", summary)
    x = np.random.default_rng(2).uniform(0, 255, (2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        first, mean = net.members[0](torch.from_numpy(x)).numpy(), net(torch.from_numpy(x)).numpy()
    full = open_network(path)
    assert full.output_name == "kp"
    np.testing.assert_allclose(full.run(x), mean, atol=1e-4 * np.abs(mean).max())
    box = open_network(path, output="kp_box")
    assert box.output_name == "kp_box"
    np.testing.assert_allclose(box.run(x), first, atol=1e-4 * np.abs(first).max())
    with pytest.raises(ValueError, match="no output 'nope'"):
        open_network(path, output="nope")


def test_the_box_network_of_a_shipped_model_becomes_its_own_file(tmp_path):
    """``--box-keypoints MANIFEST``: its own box file byte for byte, an ensemble's first member cut out, else its
    keypoint network."""
    import json

    torch = pytest.importorskip("torch", reason="torch (the train extra) is not installed")
    from hindsight_training.export import copy_box_network, export_keypoints_onnx
    from hindsight_training.network import keypoint_network
    from vision.model.engine import open_network

    members = [{"crop_sizes": [64], "steps": 1}, {"skips": True, "crop_sizes": [64], "steps": 2}]
    summary = {"members": members, "crop_sizes": [64]}
    torch.manual_seed(4)
    net = keypoint_network(summary).eval()
    export_keypoints_onnx(net, tmp_path / "ens.onnx", summary)
    files = {"detector": "det.onnx", "keypoints": "ens.onnx"}
    ensemble = tmp_path / "ensemble.json"
    ensemble.write_text(
        json.dumps(
            {
                "version": "0.6.0",
                "files": files,
                "training": {"keypoints": summary},
                "inference": {"box_keypoints_output": "kp_box"},
            }
        )
    )
    got = copy_box_network(ensemble, tmp_path / "box.onnx")
    assert got["steps"] == 1 and got["version"] == "0.6.0"  # the first member's summary
    box = open_network(tmp_path / "box.onnx")
    assert box.output_name == "kp_box"
    x = np.random.default_rng(3).uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        want = net.members[0](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(box.run(x), want, atol=1e-4 * np.abs(want).max())
    (tmp_path / "own_box.onnx").write_bytes(b"box network")
    own = tmp_path / "own.json"
    own.write_text(
        json.dumps(
            {
                "version": "0.7.0",
                "files": {**files, "box_keypoints": "own_box.onnx"},
                "training": {"keypoints": summary, "box_keypoints": {"steps": 3}},
            }
        )
    )
    assert copy_box_network(own, tmp_path / "copy.onnx")["steps"] == 3
    assert (tmp_path / "copy.onnx").read_bytes() == b"box network"
    single = tmp_path / "single.json"
    single.write_text(json.dumps({"version": "0.5.0", "files": files, "training": {"keypoints": {"steps": 4}}}))
    assert copy_box_network(single, tmp_path / "plain.onnx")["steps"] == 4
    assert (tmp_path / "plain.onnx").read_bytes() == (tmp_path / "ens.onnx").read_bytes()


def test_the_manifest_names_the_verifier_outputs_of_a_trained_probe_only():
    from hindsight_training.export import UNTRAINED_VERIFIER, manifest
    from hindsight_training.verifier import PROBE_KIND

    probe = manifest(verifier={"kind": PROBE_KIND})
    assert probe["outputs"]["dog_prob"].startswith("verifier: (N, 2)")
    for verifier in (None, {"kind": UNTRAINED_VERIFIER}, {"kind": "logistic probe, some other one"}):
        assert manifest(verifier=verifier)["outputs"]["dog_prob"].startswith("verifier: (N,) ")
    assert manifest()["training"]["verifier"] == {"kind": UNTRAINED_VERIFIER}


def test_threshold_fit_reports_the_whole_frame_as_detect_does():
    from types import SimpleNamespace

    from hindsight_training.export import reported_above

    strong, weak, whole = (SimpleNamespace(score=v) for v in (0.8, 0.3, 0.6))
    assert reported_above([strong, weak], whole, 0.5, always=False) == [strong]  # fallback: only when none passes
    assert reported_above([weak], whole, 0.5, always=False) == [whole]
    assert reported_above([strong, weak], whole, 0.5, always=True) == [strong, whole]
    assert reported_above([strong], whole, 0.7, always=True) == [strong]  # the whole frame scores too little
    assert reported_above([weak], None, 0.5, always=True) == []  # no fallback


def test_a_model_that_changes_only_later_keypoint_members_keeps_the_score_of_its_source():
    from hindsight_training.export import manifest, with_score_of

    box_net, skips, other = {"steps": 6300}, {"steps": 9751, "skips": True}, {"backbone": "movenet-lightning"}
    detector = {"steps": 2203}
    source = manifest(detector, {"members": [box_net, skips]})
    source["score_calibration"] = {"a": 1.0, "b": 1.5, "c": 0.8}
    source["score_threshold"], source["score_threshold_fit"] = 0.42, {"threshold": 0.42}
    source["inference"] = {**source["inference"], "box_from_keypoints": {"top": 0.1}, "whole_frame_always": True}

    new = manifest(detector, {"members": [box_net, skips, other]})
    kept = with_score_of(new, source)
    assert kept["score_calibration"] == source["score_calibration"] and kept["score_threshold"] == 0.42
    assert kept["inference"] == {
        "box_keypoints_output": "kp_box",
        "box_from_keypoints": {"top": 0.1},
        "whole_frame_always": True,
    }
    assert kept["training"]["keypoints"]["members"][2] == other  # the new model's own networks stay
    assert "score_calibration" not in new  # a new manifest, the input unchanged
    own_box_file = manifest(detector, {"steps": 1}, box_keypoints=box_net)  # the box network as its own file
    assert "box_keypoints_output" not in with_score_of(own_box_file, source)["inference"]

    with pytest.raises(ValueError, match="places the boxes"):
        with_score_of(manifest(detector, {"members": [skips, box_net]}), source)
    with pytest.raises(ValueError, match="detector differs"):
        with_score_of(manifest({"steps": 1}, {"members": [box_net, other]}), source)
    with pytest.raises(ValueError, match="no score_threshold"):
        with_score_of(new, {k: v for k, v in source.items() if k != "score_threshold"})


def test_a_keypoint_source_names_a_whole_model_one_of_its_members_or_a_checkpoint():
    from hindsight_training.export import shipped_member

    assert shipped_member(Path("models/dog_pose.json")) == (Path("models/dog_pose.json"), None)
    assert shipped_member(Path("/m/dog_pose.json#1")) == (Path("/m/dog_pose.json"), 1)
    assert shipped_member(Path("/ckpt/run#2/best.pt")) == (None, None)  # a '#' in a folder name is no member
    assert shipped_member(Path("/ckpt/best.pt")) == (None, None)


def test_one_member_of_the_shipped_ensemble_joins_a_new_ensemble_unchanged(tmp_path):
    torch = pytest.importorskip("torch", reason="torch (the train extra) is not installed")
    from hindsight_training.export import keypoint_ensemble
    from hindsight_training.network import keypoint_network
    from hindsight_training.recover import shipped_training

    shipped = default_model_path()
    members = shipped_training(shipped, "keypoints")["members"]
    other = tmp_path / "other" / "best.pt"
    other.parent.mkdir()
    torch.save({"model": keypoint_network({"crop_sizes": [192]}).state_dict(), "summary": {"crop_sizes": [192]}}, other)

    net, summary = keypoint_ensemble([Path(f"{shipped}#0"), other])
    assert len(net.members) == 2 and summary["members"][0] == members[0]
    assert summary["sources"] == ["dog_pose.json#0", "other/best.pt"]
    whole, _ = keypoint_ensemble([shipped])
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        assert torch.allclose(net.members[0].eval()(x), whole.members[0].eval()(x))
        assert not torch.allclose(net.members[0](x), whole.members[1].eval()(x))
    with pytest.raises(ValueError, match="no member|numbered from 0"):
        keypoint_ensemble([Path(f"{shipped}#{len(members)}")])


def test_a_score_that_would_not_carry_over_is_refused_before_any_file_is_written(tmp_path):
    from hindsight_training.export import main, score_source_problem

    shipped = default_model_path()
    new = tmp_path / "new.pt"
    assert score_source_problem(shipped, shipped, shipped, [Path(f"{shipped}#0"), new], None) is None
    assert score_source_problem(shipped, shipped, shipped, [shipped, new], None) is None
    assert "member 0" in score_source_problem(shipped, shipped, shipped, [new, shipped], None)
    assert "member 0" in score_source_problem(shipped, shipped, shipped, [Path(f"{shipped}#1"), new], None)
    assert "detector must be kept" in score_source_problem(shipped, new, shipped, [shipped], None)
    assert "verifier must be kept" in score_source_problem(shipped, shipped, None, [shipped], None)

    out = tmp_path / "model" / "dog_pose.json"
    common = ["--detector", str(shipped), "--verifier", str(shipped), "--out", str(out), "--score-from", str(shipped)]
    for argv, needle in (
        (["--keypoints", str(new), str(shipped)], "member 0 of a model manifest"),
        (["--keypoints", str(shipped), "--calibrate-only"], "give one"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(common + argv)
        message = str(stop.value)
        assert message.startswith("error: --score-from") and needle in message and "\n" not in message
    assert not out.parent.exists()  # nothing written


def test_quantization_inputs_are_cut_as_each_network_reads_its_crops():
    """The verifier's int8 ranges are calibrated on the crops it is given at run time (the box, stretched)."""
    import cv2

    from hindsight_training.export import calibration_inputs

    data = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "animalpose"
    if not data.is_dir():
        pytest.skip("../shared/data/animalpose not present")
    verifier = calibration_inputs(data, "verifier", n=4)
    keypoints = calibration_inputs(data, "keypoints", n=4)
    assert [x.shape for x in verifier] == [(1, 3, 224, 224)] * 4
    assert [x.shape for x in keypoints] == [(1, 3, 192, 192)] * 4
    # the same animals: a square verifier crop would be the keypoint crop at 224 px; the box crop is not
    as_square = cv2.resize(keypoints[0][0].transpose(1, 2, 0), (224, 224), interpolation=cv2.INTER_LINEAR)
    assert np.abs(verifier[0][0].transpose(1, 2, 0) - as_square).mean() > 25  # square: 8.8, box: 44.9
