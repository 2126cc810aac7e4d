"""Rebuild the torch networks from the shipped ONNX files, so training can continue without their checkpoints.

Training checkpoints stay where they were written; the ONNX files in ``vision/model/weights/`` are what
the project keeps. Each ONNX convolution is paired with its torch module by the module path in
the node's name (the exporter's scopes; quantization re-sorts the graph), weights stored as int8
or float16 are decoded (:func:`onnx_constants`), and a BatchNorm that the exporter folded into the
convolution before it becomes the identity plus that convolution's bias (running mean 0, variance
1 - eps, scale 1). :func:`recover_network` checks that the rebuilt network computes what the ONNX
file computes: exactly for a float graph, closely (int8 activations) for a quantized one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.model.engine import onnx_constants


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


def module_path(node_name: str) -> str:
    """Torch module path of a node named by the torch exporter's scopes.

    ``/stem/stem.0/Conv`` -> ``stem.0``; ``/blocks.0/_depthwise_conv/Conv`` -> ``blocks.0._depthwise_conv``
    (a scope that repeats its parent's path replaces it, any other is appended).
    """
    path = ""
    for scope in node_name.strip("/").split("/")[:-1]:
        path = scope if not path or scope.startswith(path + ".") else f"{path}.{scope}"
    return path


def _in_graph_order(nodes: list[Any], modules: list[Any], names: dict[int, str]) -> list[Any]:
    """``nodes`` rearranged to pair with ``modules`` (torch execution order) by module path, else as they are.

    Quantization re-sorts the graph, so its order is not the execution order. A wrapper that calls
    its child's submodules directly leaves the child's name out of the scopes: paths are also tried
    without their first component.
    """
    by_path = {module_path(n.name): n for n in nodes}
    if len(by_path) == len(nodes):
        for strip in (False, True):
            paired = [
                by_path.get(names.get(id(m), "").split(".", 1)[-1] if strip else names.get(id(m), "")) for m in modules
            ]
            if all(n is not None for n in paired):
                return paired
    return nodes


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
    names = {id(m): n for n, m in module.named_modules()}
    nodes = _in_graph_order(nodes, convs, names)
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
        for bn, node in zip(kept, _in_graph_order(bn_nodes, kept, names), strict=True):
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
        Model manifest (e.g. the shipped ``vision/model/weights/dog_pose.json``).
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

    from hindsight_training.network import DetectorExportWrapper, DogPoseNet, keypoint_network
    from vision.model.manifest import model_files

    path = model_files(manifest)[role]
    summary = shipped_training(manifest, role)
    net: Any = keypoint_network(summary) if role == "keypoints" else DogPoseNet(pretrained=False)
    traced = net if role == "keypoints" else DetectorExportWrapper(net)
    traced.eval()
    load_onnx_weights(traced, path, check_size)
    # A smooth random image (cubic upsampling of 8 x 8 noise): inside the activation ranges that a
    # quantized graph was calibrated on, unlike pixel noise.
    noise = np.random.default_rng(0).uniform(0, 255, (8, 8, 3)).astype(np.float32)
    image = cv2.resize(noise, (check_size, check_size), interpolation=cv2.INTER_CUBIC).clip(0, 255)
    x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
    with torch.no_grad():
        ours = traced(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    if is_quantized(path):  # int8 activations: the float network agrees closely, not exactly
        corr = float(np.corrcoef(ours.ravel(), ref.ravel())[0, 1])
        if not corr >= 0.95:
            raise ValueError(f"{path.name}: rebuilt network differs from the int8 ONNX file (correlation {corr:.3f})")
        return net
    err = float(np.abs(ours - ref).max() / (np.abs(ref).max() + 1e-6))
    if err > 1e-3:
        raise ValueError(f"{path.name}: rebuilt network differs from the ONNX file (relative error {err:.2g})")
    return net


def is_quantized(onnx_path: str | Path) -> bool:
    """Whether an ONNX file quantizes activations (``QuantizeLinear`` nodes, see ``export.quantize_int8``)."""
    import onnx

    return any(n.op_type == "QuantizeLinear" for n in onnx.load(str(onnx_path)).graph.node)
