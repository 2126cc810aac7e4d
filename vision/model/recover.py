"""Rebuild the torch networks from the shipped ONNX files, so training can continue on a new machine.

Training checkpoints stay on the machine that made them; the ONNX files in ``models/`` are what
the project keeps. The exporter folds each BatchNorm into the convolution before it, so the
weights are recovered by running the torch network once with hooks (its convolutions execute in
the order the exporter wrote them), taking each ONNX Conv's weight and bias, and turning each
folded BatchNorm into the identity plus that bias (running mean 0, variance 1 - eps, scale 1).
The rebuilt network computes the same function as the ONNX file (within the float16 rounding of
the stored weights); :func:`recover_network` checks this before returning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def onnx_constants(model: Any) -> dict[str, np.ndarray]:
    """Float32 values of an ONNX graph's initializers, including those stored as float16 or int8 + scale.

    ``export.store_weights_fp16`` / ``store_weights_int8`` replace a weight by a low-precision
    initializer and ``Cast`` (and ``Mul``) nodes; this follows those nodes back to the float32 name.
    """
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Cast" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]].astype(np.float32)
        elif node.op_type == "Mul" and all(x in values for x in node.input):
            values[node.output[0]] = (values[node.input[0]] * values[node.input[1]]).astype(np.float32)
    return values


def _execution_order(module: Any, size: int) -> list[Any]:
    """Conv, transposed-conv and BatchNorm modules of a network in the order a forward pass runs them."""
    import torch

    order: list[Any] = []
    kinds = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.BatchNorm2d)
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m)) for m in module.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    return order


def load_onnx_weights(module: Any, onnx_path: str | Path, size: int) -> None:
    """Copy the weights of an exported ONNX file into a torch network of the same architecture (in place).

    Parameters
    ----------
    module : torch.nn.Module
        The network as it was exported (``KeypointNet`` or ``DetectorExportWrapper``), in eval mode.
    onnx_path : str or Path
        The exported file.
    size : int
        Side of the dummy input used to trace the execution order (a multiple of 32).

    Raises
    ------
    ValueError
        When the ONNX graph does not match the network (count or shape of convolutions).
    """
    import onnx
    import torch

    model = onnx.load(str(onnx_path))
    values = onnx_constants(model)
    nodes = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    bn_nodes = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    order = _execution_order(module, size)
    convs = [m for m in order if not isinstance(m, torch.nn.BatchNorm2d)]
    if len(convs) != len(nodes):
        raise ValueError(f"{Path(onnx_path).name}: {len(nodes)} convolutions, the network has {len(convs)}")
    follower = {id(a): b for a, b in zip(order, order[1:], strict=False)}
    folded: set[int] = set()
    with torch.no_grad():
        for conv, node in zip(convs, nodes, strict=True):
            weight = torch.from_numpy(values[node.input[1]].copy())
            if weight.shape != conv.weight.shape:
                raise ValueError(f"{node.name}: weight {tuple(weight.shape)} != {tuple(conv.weight.shape)}")
            conv.weight.copy_(weight)
            bias = torch.from_numpy(values[node.input[2]].copy()) if len(node.input) > 2 else None
            bn = follower.get(id(conv))
            if conv.bias is not None:
                conv.bias.copy_(bias if bias is not None else torch.zeros_like(conv.bias))
            elif isinstance(bn, torch.nn.BatchNorm2d) and bias is not None:
                assert bn.running_mean is not None and bn.running_var is not None
                bn.weight.fill_(1.0)
                bn.bias.copy_(bias)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                folded.add(id(bn))
            elif bias is not None and bool(bias.abs().max() > 0):
                raise ValueError(f"{node.name}: ONNX bias without a place in the network")
        kept = [m for m in order if isinstance(m, torch.nn.BatchNorm2d) and id(m) not in folded]
        if len(kept) != len(bn_nodes):
            name = Path(onnx_path).name
            raise ValueError(f"{name}: {len(bn_nodes)} BatchNorms, the network has {len(kept)} not folded")
        for bn, node in zip(kept, bn_nodes, strict=True):
            scale, shift, mean, var = (torch.from_numpy(values[x].copy()) for x in node.input[1:5])
            assert bn.running_mean is not None and bn.running_var is not None
            bn.weight.copy_(scale)
            bn.bias.copy_(shift)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)


def shipped_training(manifest: str | Path, role: str) -> dict[str, Any]:
    """The training summary a model manifest records for one network (``{}`` when none)."""
    meta = json.loads(Path(manifest).read_text(encoding="utf-8"))
    return {"version": meta.get("version"), **((meta.get("training") or {}).get(role) or {})}


def recover_network(manifest: str | Path, role: str, check_size: int = 128) -> Any:
    """Torch network (``KeypointNet`` or ``DogPoseNet``) holding the weights of a shipped model.

    Parameters
    ----------
    manifest : str or Path
        Model manifest (``models/dog_pose.json``).
    role : {"keypoints", "detector"}
        Which network.
    check_size : int
        Side of the random image on which torch and onnxruntime outputs are compared.

    Raises
    ------
    ValueError
        When the rebuilt network's output differs from the ONNX file's.
    """
    import onnxruntime as ort
    import torch

    from vision.model.detector import model_files
    from vision.model.network import DetectorExportWrapper, DogPoseNet, KeypointNet

    path = model_files(manifest)[role]
    net: Any = KeypointNet(pretrained=False) if role == "keypoints" else DogPoseNet(pretrained=False)
    traced = net if role == "keypoints" else DetectorExportWrapper(net)
    traced.eval()
    load_onnx_weights(traced, path, check_size)
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, check_size, check_size)).astype(np.float32)
    with torch.no_grad():
        ours = traced(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    err = float(np.abs(ours - ref).max() / (np.abs(ref).max() + 1e-6))
    if err > 1e-3:
        raise ValueError(f"{path.name}: rebuilt network differs from the ONNX file (relative error {err:.2g})")
    return net
