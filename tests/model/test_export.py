"""Float16 weight storage of exported ONNX files (needs onnx, not torch)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from vision.model.export import store_weights_fp16  # noqa: E402


def _conv_model(path, weight, bias):
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


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
