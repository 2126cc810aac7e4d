"""Running the model's ONNX networks: one small interface, the engine imported lazily.

Scope: run one output of an ONNX network file on a float32 NCHW batch, on the CPU, in this
process, with onnxruntime. An ensemble whose output is the mean of its members' outputs runs its
members side by side, one core each (:class:`ParallelEnsemble`). Int8-stored and statically
quantized networks run in float arithmetic (:func:`weights_as_float32`), so results do not depend
on the CPU's int8 instructions. The rest of the model code sees only :class:`Network`, so another
engine would be one more class here.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Network(Protocol):
    """One ONNX network ready to run.

    Attributes
    ----------
    input_name : str
        The graph's (only) input.
    output_name : str
        The graph output that :meth:`run` gives.
    """

    input_name: str
    output_name: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> the network's output for that batch (float32, a new array)."""
        ...


def dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | float = 0.0, axis: int = 1) -> np.ndarray:
    """ONNX ``DequantizeLinear`` of a constant, ``(q - zero) * scale``: float32 (computed in float64).

    A 1-D ``scale`` (and ``zero``) of a tensor with more than one axis is per channel along ``axis``.
    """
    q64 = np.asarray(q, np.float64)
    s64, z64 = np.asarray(scale, np.float64), np.asarray(zero, np.float64)
    if s64.ndim == 1 and q64.ndim > 1:
        shape = [1] * q64.ndim
        shape[axis % q64.ndim] = -1
        s64 = s64.reshape(shape)
        z64 = z64.reshape(shape) if z64.ndim == 1 else z64
    return ((q64 - z64) * s64).astype(np.float32)


def onnx_constants(model: Any) -> dict[str, np.ndarray]:
    """Float32 values of an ONNX graph's initializers, following the nodes that decode stored weights.

    Quantized weights are int8/int32 initializers read through ``DequantizeLinear``
    (``(q - zero_point) * scale``, per channel along ``axis``); weights stored as float16 or
    int8 + scale through ``Cast`` and ``Mul``; equal constants stored once through ``Identity``.

    Parameters
    ----------
    model : onnx.ModelProto
        The loaded graph (not modified).

    Returns
    -------
    dict of str to np.ndarray
        Tensor name -> value, for every initializer and every node output computable from them.
    """
    from onnx import helper, numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in values:  # the exporter's shared constants
            values[node.output[0]] = values[node.input[0]]
        elif node.op_type == "Cast" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]].astype(np.float32)
        elif node.op_type == "Mul" and all(x in values for x in node.input):
            values[node.output[0]] = (values[node.input[0]] * values[node.input[1]]).astype(np.float32)
        elif node.op_type == "DequantizeLinear" and node.input[0] in values and node.input[1] in values:
            zero = values[node.input[2]] if len(node.input) > 2 and node.input[2] else 0.0
            axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
            values[node.output[0]] = dequantize(values[node.input[0]], values[node.input[1]], zero, axis)
    return values


def weights_as_float32(model: Any) -> Any:
    """An ONNX model with int8 weights expanded to float32 and quantized activations run in float.

    Two kinds of int8 file are read this way:

    - weights stored as int8 (``hindsight_training.export.store_weights_int8``): onnxruntime keeps a
      ``DequantizeLinear`` of a constant for quantization fusions, so the file as written would
      dequantize the weights on every run. Expanded once here, it runs as the float network.
    - networks quantized statically (``hindsight_training.export.quantize_int8``; QDQ: every activation passes a
      ``QuantizeLinear`` -> ``DequantizeLinear`` pair). Their weights are expanded too, and each pair
      becomes a ``Clip`` to the range its uint8 codes cover. The quantization may have absorbed a
      ReLU6 into that range, and the ``Clip`` keeps it. Left as QDQ, onnxruntime would run int8 kernels
      whose results depend on the CPU (on AVX2 without VNNI they saturate); in float arithmetic the
      network gives the same outputs on every CPU.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    decoded = onnx_constants(model)  # stored weights read through their DequantizeLinear

    def const(name: str) -> np.ndarray:
        return numpy_helper.to_array(inits[name])

    replaced: dict[int, Any] = {}  # id(DequantizeLinear of an activation) -> its Clip
    dropped: set[int] = set()
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        if all(name in inits for name in node.input if name):
            graph.initializer.append(numpy_helper.from_array(decoded[node.output[0]], node.output[0]))
            dropped.add(id(node))
            continue
        quant = producers.get(node.input[0])
        if quant is None or quant.op_type != "QuantizeLinear" or not all(n in inits for n in quant.input[1:] if n):
            continue
        scale = float(const(quant.input[1]).reshape(-1)[0])
        zero_code = const(quant.input[2]) if len(quant.input) > 2 and quant.input[2] else np.array(0, np.uint8)
        codes = np.iinfo(zero_code.dtype)
        low, high = ((v - float(zero_code.reshape(-1)[0])) * scale for v in (codes.min, codes.max))
        bounds = [
            numpy_helper.from_array(np.array(v, np.float32), f"{node.output[0]}__{side}")
            for v, side in ((low, "low"), (high, "high"))
        ]
        graph.initializer.extend(bounds)
        replaced[id(node)] = helper.make_node(
            "Clip", [quant.input[0], bounds[0].name, bounds[1].name], [node.output[0]], name=node.output[0] + "__range"
        )
        dropped.add(id(quant))
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for init in list(graph.initializer):
        if init.name not in used:
            graph.initializer.remove(init)
    return model


class OnnxRuntimeNetwork:
    """A network run by onnxruntime (one ``InferenceSession``; safe to call from several threads)."""

    def __init__(self, model_bytes: bytes, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Several sessions run one after another on the same cores: idle worker threads must not spin.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        self.input_name: str = self._session.get_inputs()[0].name
        self.output_name: str = self._session.get_outputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> the network's first output."""
        return np.asarray(self._session.run([self.output_name], {self.input_name: batch})[0])


class ParallelEnsemble:
    """The mean of several networks' outputs, the members run at once on a pool of threads.

    On a CPU with few cores, small networks use one core each far better than they share all
    of them: the ensemble's members side by side (one intra-op thread each) run in about 0.6 of
    the time the whole graph takes on all cores. The output is the members' sum divided by their
    number, added in order, as the ensemble's own graph computes it.

    Parameters
    ----------
    members : list of Network
        The members, each giving an output of the same shape.
    workers : int
        Threads of the pool (the members run at most this many at a time).
    output_name : str
        The name of the ensemble's output in its own graph.
    """

    def __init__(self, members: list[Network], workers: int, output_name: str) -> None:
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.members = members
        self.input_name = members[0].input_name
        self.output_name = output_name
        self._pool = ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="ensemble")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> the mean of the members' outputs (float32, a new array)."""
        outs = [f.result() for f in [self._pool.submit(m.run, batch) for m in self.members]]
        total = outs[0]
        for out in outs[1:]:
            total = total + out
        return (total / np.float32(len(outs))).astype(np.float32)


def ensemble_members(model: Any, output: str) -> list[str] | None:
    """The member outputs of an ensemble output computed as ``(m_1 + ... + m_k) / k``, or None.

    Parameters
    ----------
    model : onnx.ModelProto
        The loaded graph (not modified).
    output : str
        A graph output.

    Returns
    -------
    list of str or None
        The tensors ``m_1 .. m_k`` in the order they are added; None when ``output`` is not a
        ``Div`` by the number of the leaves of a tree of ``Add`` nodes (``k >= 2``).
    """
    from onnx import helper, numpy_helper

    producers = {out: node for node in model.graph.node for out in node.output}
    node = producers.get(output)
    if node is None or node.op_type != "Div":
        return None
    divisor_node = producers.get(node.input[1])
    inits = {i.name: i for i in model.graph.initializer}
    if divisor_node is not None and divisor_node.op_type == "Constant":
        divisor = numpy_helper.to_array(helper.get_attribute_value(divisor_node.attribute[0]))
    elif node.input[1] in inits:
        divisor = numpy_helper.to_array(inits[node.input[1]])
    else:
        return None
    leaves: list[str] = []

    def walk(name: str) -> None:
        add = producers.get(name)
        if add is not None and add.op_type == "Add":
            walk(add.input[0])
            walk(add.input[1])
        else:
            leaves.append(name)

    walk(node.input[0])
    if len(leaves) < 2 or divisor.size != 1 or float(divisor.reshape(-1)[0]) != len(leaves):
        return None
    return leaves


def cut_to_output(model: Any, output: str) -> Any:
    """The part of an ONNX graph that computes one tensor: a new model with that tensor as its output.

    Parameters
    ----------
    model : onnx.ModelProto
        The loaded graph (not modified).
    output : str
        Any tensor of the graph (a graph output or an intermediate one); float32.

    Returns
    -------
    onnx.ModelProto
        The nodes ``output`` depends on, the initializers they read and the graph's inputs.
    """
    from onnx import TensorProto, helper

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    kept: set[int] = set()
    stack = [output]
    while stack:
        node = producers.get(stack.pop())
        if node is not None and id(node) not in kept:
            kept.add(id(node))
            stack.extend(name for name in node.input if name)
    nodes = [n for n in graph.node if id(n) in kept]  # in the graph's (topological) order
    used = {name for n in nodes for name in n.input}
    cut = helper.make_graph(
        nodes,
        graph.name,
        list(graph.input),
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        [i for i in graph.initializer if i.name in used],
    )
    return helper.make_model(cut, opset_imports=list(model.opset_import), ir_version=model.ir_version)


#: Bump when the preparation of :func:`prepared_graphs` changes, so old cached graphs are not read.
PREPARATION_VERSION = 1


def network_cache_dir() -> Path | None:
    """The folder of prepared network graphs, or None for no cache.

    ``$HINDSIGHT_CACHE_DIR/networks``; without that setting ``$XDG_CACHE_HOME/hindsight/networks``
    (``~/.cache/hindsight/networks``); an empty ``HINDSIGHT_CACHE_DIR`` turns the cache off.
    """
    env = os.environ.get("HINDSIGHT_CACHE_DIR")
    if env is not None:
        return Path(env) / "networks" if env else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hindsight" / "networks"


def _prepare(path: Path, output: str | None, split_members: bool) -> tuple[str, list[bytes]]:
    """Run :func:`weights_as_float32`, pick ``output`` and, when asked, cut an ensemble into its members."""
    import onnx

    model = weights_as_float32(onnx.load(str(path)))
    outputs = [o.name for o in model.graph.output]
    if output is not None and output not in outputs:
        raise ValueError(f"{path.name} has no output {output!r} (outputs: {', '.join(outputs)})")
    wanted = output or outputs[0]
    members = ensemble_members(model, wanted) if split_members else None
    if members is not None:
        return wanted, [cut_to_output(model, m).SerializeToString() for m in members]
    if output is not None and len(outputs) > 1:
        model = cut_to_output(model, output)
    return wanted, [model.SerializeToString()]


def prepared_graphs(
    path: str | Path, output: str | None = None, split_members: bool = False
) -> tuple[str, list[bytes]]:
    """The float32 graph(s) that compute one output of a network file, cached on disk.

    Preparing a graph needs the ``onnx`` package (about a second to import); the result is kept in
    :func:`network_cache_dir` under the file's SHA-256, so later loads read it with onnxruntime
    alone. A cache that cannot be read or written is skipped.

    Parameters
    ----------
    path : str or Path
        ONNX file.
    output : str or None
        Graph output to compute; None -> the first.
    split_members : bool
        When that output is an ensemble's mean (:func:`ensemble_members`), give one graph per member.

    Returns
    -------
    (str, list of bytes)
        The output's name and the serialized graphs: one, or one per ensemble member.

    Raises
    ------
    ValueError
        When the graph has no such output.
    """
    import hashlib
    import json

    path = Path(path)
    folder = network_cache_dir()
    if folder is None:
        return _prepare(path, output, split_members)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:32]
    key = f"{digest}-{output or ''}-{int(split_members)}-v{PREPARATION_VERSION}"
    index = folder / f"{key}.json"
    try:
        meta = json.loads(index.read_text(encoding="utf-8"))
        graphs = [(folder / f"{key}-{i}.onnx").read_bytes() for i in range(int(meta["graphs"]))]
        return str(meta["output"]), graphs
    except (OSError, ValueError, KeyError, TypeError):
        pass
    wanted, graphs = _prepare(path, output, split_members)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for i, graph in enumerate(graphs):
            _write_atomically(folder / f"{key}-{i}.onnx", graph)
        _write_atomically(index, json.dumps({"output": wanted, "graphs": len(graphs)}).encode())
    except OSError:
        pass
    return wanted, graphs


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def open_network(
    path: str | Path, threads: int = 2, output: str | None = None, parallel_members: bool = True
) -> Network:
    """One network file, ready to run.

    Int8 networks run in float arithmetic (:func:`weights_as_float32`): weights stored as int8 are
    expanded once, and a statically quantized network gives the same results on every CPU. With
    ``output``, only the part of the graph that gives that output is kept (e.g. an ensemble's first
    member, ``kp_box``). The prepared graphs are cached (:func:`prepared_graphs`).

    Parameters
    ----------
    path : str or Path
        ONNX file.
    threads : int
        Threads of each operator (intra-op).
    output : str or None
        Graph output to compute; None -> the first.
    parallel_members : bool
        When that output is an ensemble's mean (:func:`ensemble_members`) and ``threads > 1``, run
        the members side by side (:class:`ParallelEnsemble`, one thread each).

    Raises
    ------
    ValueError
        When the graph has no such output.
    """
    split = parallel_members and threads > 1
    wanted, graphs = prepared_graphs(path, output, split)
    if split and len(graphs) > 1:
        return ParallelEnsemble([OnnxRuntimeNetwork(g, 1) for g in graphs], threads, wanted)
    return OnnxRuntimeNetwork(graphs[0], threads)
