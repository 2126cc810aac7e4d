"""The model manifest (``dog_pose.json``): where the model is, what it names, and how to run it.

A manifest is a JSON object. :class:`ModelManifest` reads the keys inference needs, with the
defaults of older manifests that lack them in one place (:data:`OLD_MANIFEST_DEFAULTS`); the whole
object stays available as :attr:`ModelManifest.raw` (training figures, provenance).

The shipped model is package data (``vision/model/weights/``), so an installed wheel finds it;
``HINDSIGHT_MODEL`` (the path of another manifest) overrides it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from vision.model.geometry import VERIFY_CROPS

#: Environment variable naming a model manifest to use instead of the shipped one.
MODEL_ENV = "HINDSIGHT_MODEL"

#: Box refinement without ``box_from_keypoints`` in the manifest, and the cut-offs training writes there:
#: keypoints at this confidence or more count, at least ``min_points`` of them, else the detector box stays.
DEFAULT_BOX_REFINEMENT: dict[str, Any] = {"margins": [0.09] * 4, "min_confidence": 0.2, "min_points": 4}

#: The value of each setting for a manifest that does not give it (those written before the setting existed).
OLD_MANIFEST_DEFAULTS: dict[str, Any] = {
    "det_size": 256,  # longer side (px) of the detector's letterboxed view
    "det_max_reduction": 0.0,  # 0: no closer second look at a large frame
    "kp_size": 192,  # side (px) of the keypoint network's square crop
    "verify_crop": "square",  # how the verifier's crop is cut (up to model 0.7.1: a padded square)
    "score_threshold": 0.3,  # minimum dog score of ``detect``
    "calibration": (1.0, 0.0, (0.0,)),  # (a, b, c): the detector's raw score alone
    "flip_test": False,
    "whole_frame_fallback": False,
    "whole_frame_always": False,
}


def default_model_path() -> Path:
    """The model manifest: ``$HINDSIGHT_MODEL`` if set, else the shipped ``dog_pose.json`` (package data)."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    return Path(str(resources.files("vision.model") / "weights" / "dog_pose.json"))


def model_files(manifest: str | Path) -> dict[str, Path]:
    """The ONNX files a manifest names, role -> path (next to the manifest).

    Roles: ``detector`` and ``keypoints`` always; ``verifier`` and ``box_keypoints`` when named.
    """
    manifest = Path(manifest)
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    files = meta.get("files") or {}
    out = {role: manifest.parent / str(files.get(role, f"dog_{role}.onnx")) for role in ("detector", "keypoints")}
    for role in ("verifier", "box_keypoints"):
        if files.get(role):
            out[role] = manifest.parent / str(files[role])
    return out


def _rounded(value: object) -> float | None:
    return round(value, 3) if isinstance(value, float) else None


def model_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """A model's version and headline validation figures, from its manifest (None for figures it lacks)."""
    out: dict[str, Any] = {"version": manifest.get("version")}
    val = (manifest.get("metrics") or {}).get("val_evaluation") or {}

    def hind(mode: dict[str, Any] | None) -> float | None:
        return _rounded(((mode or {}).get("pck10") or {}).get("hind_limb"))

    if val:
        side = (val.get("standing_side_on") or {}).get("gt_box") or {}
        out["validation"] = {
            "hind_limb_pck10_gt_box": hind(val.get("gt_box")),
            "hind_limb_pck10_end_to_end": hind(val.get("pipeline")),
            "dogs_found": _rounded((val.get("detection") or {}).get("found_iou50")),
            "hind_limb_pck10_standing_side_on": _rounded((side.get("hind_limb") or {}).get("rate")),
        }
    return out


@dataclass(frozen=True)
class ModelManifest:
    """The inference settings of a model manifest.

    Attributes
    ----------
    raw : dict
        The whole manifest as read.
    version : str or None
        The model's version.
    det_size : int
        Longer side (px) of the detector's letterboxed view of a frame.
    det_max_reduction : float
        A frame longer than ``det_size * det_max_reduction`` gets a closer second look; 0 turns it off.
    det_max_size : int
        Longer side (px) of that closer view at most.
    kp_size : int
        Side (px) of the keypoint network's square crop.
    verify_crop : str
        How the verifier's crop is cut around a box (one of ``geometry.VERIFY_CROPS``).
    calibration : tuple
        ``(a, b, c)``: dog score = sigmoid(a * logit(peak) + logit(verifier outputs) @ c + b); ``c`` has one
        weight per verifier output.
    score_threshold : float
        Default minimum dog score of detection, in (0, 1).
    flip_test : bool
        Average each crop's heatmaps with those of its mirror image.
    box_refinement : dict or None
        ``{"margins": [l, t, r, b], "min_confidence": c, "min_points": n}``: boxes refitted around the
        first keypoint pass; None: no refinement unless asked for (then :data:`DEFAULT_BOX_REFINEMENT`).
    whole_frame_fallback, whole_frame_always : bool
        Try the whole frame as a candidate when no detector candidate passes (always, with the second).
    box_keypoints_output : str or None
        Graph output of the keypoint file that is the box network (an ensemble's first member).
    """

    raw: dict[str, Any] = field(repr=False)
    version: str | None
    det_size: int
    det_max_reduction: float
    det_max_size: int
    kp_size: int
    verify_crop: str
    calibration: tuple[float, float, tuple[float, ...]]
    score_threshold: float
    flip_test: bool
    box_refinement: dict[str, Any] | None
    whole_frame_fallback: bool
    whole_frame_always: bool
    box_keypoints_output: str | None

    @classmethod
    def from_dict(cls, meta: dict[str, Any]) -> ModelManifest:
        """Read a manifest object, a missing key taking its :data:`OLD_MANIFEST_DEFAULTS` value.

        Raises
        ------
        ValueError
            When ``input.verify_crop`` is not a known crop.
        """
        d = OLD_MANIFEST_DEFAULTS
        inp = meta.get("input") or {}
        inference = meta.get("inference") or {}
        det_size = int(inp.get("det_size", d["det_size"]))
        verify_crop = str(inp.get("verify_crop", d["verify_crop"]))
        if verify_crop not in VERIFY_CROPS:
            raise ValueError(f"unknown input.verify_crop {verify_crop!r} in the model manifest")
        cal = meta.get("score_calibration")
        if cal:
            c = cal.get("c", 0.0)
            weights = tuple(float(v) for v in (c if isinstance(c, (list, tuple)) else [c]))
            calibration = (float(cal.get("a", 1.0)), float(cal.get("b", 0.0)), weights)
        else:
            calibration = d["calibration"]
        thr = meta.get("score_threshold")
        refine = inference.get("box_from_keypoints")
        box_output = inference.get("box_keypoints_output")
        version = meta.get("version")
        return cls(
            raw=meta,
            version=None if version is None else str(version),
            det_size=det_size,
            det_max_reduction=float(inp.get("det_max_reduction", d["det_max_reduction"])),
            det_max_size=int(inp.get("det_max_size", det_size)),
            kp_size=int(inp.get("kp_size", d["kp_size"])),
            verify_crop=verify_crop,
            calibration=calibration,
            score_threshold=float(thr) if isinstance(thr, (int, float)) and 0 < thr < 1 else d["score_threshold"],
            flip_test=bool(inference.get("flip_test", d["flip_test"])),
            box_refinement=refine if isinstance(refine, dict) else None,
            whole_frame_fallback=bool(inference.get("whole_frame_fallback", d["whole_frame_fallback"])),
            whole_frame_always=bool(inference.get("whole_frame_always", d["whole_frame_always"])),
            box_keypoints_output=str(box_output) if box_output else None,
        )

    @classmethod
    def read(cls, path: str | Path) -> ModelManifest:
        """Read a manifest file.

        Raises
        ------
        ValueError
            When the file is not a JSON object or not a manifest.
        """
        path = Path(path)
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a dog pose model manifest: {path.name}") from exc
        if not isinstance(meta, dict):
            raise ValueError(f"not a dog pose model manifest: {path.name}")
        return cls.from_dict(meta)
