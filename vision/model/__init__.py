"""Hindsight's own dog detector + keypoint model (training in torch, inference in onnxruntime)."""
