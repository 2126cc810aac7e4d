"""The network interface: a file's graph run on any batch and size, one chosen output."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from vision.model.engine import ParallelEnsemble, ensemble_members, open_network  # noqa: E402


def _two_output_net(path, rng):
    """Conv -> ReLU -> ConvTranspose (outputs ``heat`` and ``feat``), dynamic batch and size."""
    w = rng.normal(0, 0.5, (6, 3, 3, 3)).astype(np.float32)
    wt = rng.normal(0, 0.3, (6, 4, 4, 4)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["feat"]),
            helper.make_node("ConvTranspose", ["feat", "wt"], ["heat"], strides=[2, 2], pads=[1, 1, 1, 1]),
        ],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [
            helper.make_tensor_value_info("heat", TensorProto.FLOAT, ["n", 4, "h2", "w2"]),
            helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["n", 6, "h", "w"]),
        ],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(wt, "wt")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def test_a_network_computes_its_graph_for_any_batch_and_size(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    path = tmp_path / "net.onnx"
    _two_output_net(path, rng)
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    network = open_network(path, threads=2)
    assert (network.input_name, network.output_name) == ("image", "heat")
    for shape in [(1, 3, 16, 16), (3, 3, 16, 16), (2, 3, 24, 40), (1, 3, 16, 16)]:  # back to the first shape
        x = rng.uniform(0, 255, shape).astype(np.float32)
        want = reference.run(["heat"], {"image": x})[0]
        got = network.run(x)
        assert got.shape == (shape[0], 4, 2 * shape[2], 2 * shape[3]) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    feat = open_network(path, output="feat")
    assert feat.output_name == "feat"
    x = rng.uniform(0, 255, (1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(feat.run(x), reference.run(["feat"], {"image": x})[0], rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="has no output 'heatmaps'"):
        open_network(path, output="heatmaps")


def _ensemble_net(path, rng, divisor=3.0):
    """Three conv members, their outputs added in order and divided by ``divisor`` (output ``mean``)."""
    ws = [rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32) for _ in range(3)]
    nodes = [helper.make_node("Conv", ["image", f"w{i}"], [f"m{i}"], pads=[1, 1, 1, 1]) for i in range(3)]
    nodes += [
        helper.make_node("Add", ["m0", "m1"], ["s01"]),
        helper.make_node("Add", ["s01", "m2"], ["s"]),
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(divisor, np.float32))),
        helper.make_node("Div", ["s", "k"], ["mean"]),
    ]
    graph = helper.make_graph(
        nodes,
        "ensemble",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [
            helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["n", 4, "h", "w"]),
            helper.make_tensor_value_info("m0", TensorProto.FLOAT, ["n", 4, "h", "w"]),
        ],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(ws)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def test_an_ensemble_mean_runs_its_members_side_by_side_and_gives_the_graphs_output(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(1)
    path = tmp_path / "ensemble.onnx"
    _ensemble_net(path, rng)
    assert ensemble_members(onnx.load(str(path)), "mean") == ["m0", "m1", "m2"]
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    network = open_network(path, threads=2)
    assert isinstance(network, ParallelEnsemble) and len(network.members) == 3
    for shape in [(1, 3, 12, 12), (2, 3, 20, 8)]:
        x = rng.uniform(0, 255, shape).astype(np.float32)
        want = reference.run(["mean"], {"image": x})[0]
        np.testing.assert_allclose(network.run(x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert not isinstance(open_network(path, threads=1), ParallelEnsemble)  # one core: the graph as it is
    first = open_network(path, threads=2, output="m0")  # one member's output is no ensemble
    x = rng.uniform(0, 255, (1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(first.run(x), reference.run(["m0"], {"image": x})[0], rtol=1e-5, atol=1e-3)


def test_a_sum_divided_by_another_number_is_not_taken_for_an_ensemble(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "not_mean.onnx"
    _ensemble_net(path, rng, divisor=2.0)
    assert ensemble_members(onnx.load(str(path)), "mean") is None
    assert not isinstance(open_network(path, threads=2), ParallelEnsemble)
    two = tmp_path / "two.onnx"
    _two_output_net(two, rng)
    assert ensemble_members(onnx.load(str(two)), "heat") is None


def test_prepared_graphs_are_cached_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    from vision.model import engine

    monkeypatch.setenv("HINDSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(3)
    path = tmp_path / "ens.onnx"
    _ensemble_net(path, rng)
    x = rng.uniform(0, 255, (2, 3, 8, 8)).astype(np.float32)
    first = open_network(path, threads=2)
    cached = sorted((tmp_path / "cache" / "networks").glob("*.onnx"))
    assert len(cached) == 3, "one prepared graph per ensemble member"
    calls = []
    monkeypatch.setattr(engine, "_prepare", lambda *a: calls.append(a) or pytest.fail("prepared again"))
    again = open_network(path, threads=2)
    np.testing.assert_array_equal(again.run(x), first.run(x))
    monkeypatch.undo()
    monkeypatch.setenv("HINDSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    next(iter((tmp_path / "cache" / "networks").glob("*.json"))).write_text("{not json", encoding="utf-8")
    np.testing.assert_array_equal(open_network(path, threads=2).run(x), first.run(x))


def test_a_warm_cache_loads_the_shipped_model_without_the_onnx_package(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from vision.model.detector import DogPoseModel\n"
        "DogPoseModel.load()\n"
        "print('onnx' in sys.modules)\n"
    )
    env = {**__import__("os").environ, "HINDSIGHT_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True) for _ in "ab"
    ]
    assert [r.stdout.strip() for r in runs] == ["True", "False"]


def test_an_empty_cache_setting_turns_the_cache_off(tmp_path, monkeypatch):
    from vision.model.engine import network_cache_dir

    monkeypatch.setenv("HINDSIGHT_CACHE_DIR", "")
    assert network_cache_dir() is None
    path = tmp_path / "net.onnx"
    _two_output_net(path, np.random.default_rng(0))
    assert open_network(path).output_name == "heat"
    assert list(tmp_path.iterdir()) == [path]
