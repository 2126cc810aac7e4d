"""Verifier probe: box sampling, the logistic fit, ROC AUC, probe files and the exported network."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch", reason="training tests need torch (the train extra)")

from hindsight_training.dataset import Instance, Record  # noqa: E402
from hindsight_training.verifier import FEATURE_DIM, Probe, fit_logistic, roc_auc, sample_boxes  # noqa: E402
from vision.model.geometry import box_iou  # noqa: E402


def _instance(species, box):
    return Instance(species, np.array(box, np.float32), np.zeros((20, 3), np.float32))


def _record(seed=0):
    return Record(
        f"{seed}.jpg",
        "train",
        640,
        480,
        (_instance("dog", [40, 60, 300, 380]), _instance("cat", [380, 100, 560, 300])),
    )


@given(st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_sampled_boxes_have_the_overlap_their_label_says(seed):
    rec = _record()
    dog, cat = rec.instances[0].bbox[None], rec.instances[1].bbox[None]
    samples = sample_boxes(rec, np.random.default_rng(seed))
    kinds = [s.kind for s in samples]
    assert kinds.count("dog") >= 1 and kinds.count("other_animal") == 1
    for s in samples:
        box = np.array(s.box, np.float32)[None]
        assert 0 <= box[0, 0] < box[0, 2] <= 639 and 0 <= box[0, 1] < box[0, 3] <= 479
        assert s.label == (s.kind == "dog")
        if s.kind == "dog":
            assert box_iou(box, dog)[0, 0] >= 0.6
        elif s.kind == "dog_part":
            assert 0.05 <= box_iou(box, dog)[0, 0] <= 0.35
        elif s.kind == "background":
            assert max(box_iou(box, dog)[0, 0], box_iou(box, cat)[0, 0]) < 0.1
        else:
            assert box_iou(box, cat)[0, 0] > 0.5


def test_sampling_depends_only_on_the_seed():
    a = sample_boxes(_record(), np.random.default_rng(3))
    b = sample_boxes(_record(), np.random.default_rng(3))
    assert a == b


def test_roc_auc_known_values():
    y = np.array([0, 0, 1, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), y) == 0.5
    assert roc_auc(np.array([0.1, 0.6, 0.5, 0.9]), y) == 0.75
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_logistic_fit_recovers_the_direction_that_separates_the_classes():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=8)
    x = rng.normal(size=(600, 8))
    y = (x @ direction + rng.normal(0, 0.3, 600) > 0.5).astype(float)
    w, b = fit_logistic(x, y, ridge=0.1)
    cosine = w @ direction / np.linalg.norm(w) / np.linalg.norm(direction)
    assert cosine > 0.95
    assert roc_auc(x @ w + b, y) > 0.97
    w_strong, _ = fit_logistic(x, y, ridge=1e4)  # the ridge shrinks the weights
    assert np.linalg.norm(w_strong) < 0.2 * np.linalg.norm(w)


def test_probe_round_trips_and_rejects_a_wrong_shape(tmp_path):
    rng = np.random.default_rng(1)
    probe = Probe(rng.normal(size=FEATURE_DIM).astype(np.float32), -0.25, {"ridge": 3.0})
    path = probe.save(tmp_path / "probe.npz")
    back = Probe.load(path)
    np.testing.assert_array_equal(back.weight, probe.weight)
    assert back.bias == pytest.approx(-0.25) and back.summary == {"ridge": 3.0}
    np.savez(tmp_path / "bad.npz", weight=np.zeros(10, np.float32), bias=np.float32(0))
    with pytest.raises(ValueError, match="shape"):
        Probe.load(tmp_path / "bad.npz")


def test_verifier_network_with_a_probe_is_the_logistic_of_its_features(tmp_path):
    torch = pytest.importorskip("torch", reason="torch (the train extra) is not installed")
    ort = pytest.importorskip("onnxruntime")
    from hindsight_training.export import export_verifier_onnx
    from hindsight_training.network import DogVerifier

    rng = np.random.default_rng(2)
    weight, bias = rng.normal(0, 0.05, FEATURE_DIM).astype(np.float32), 0.3
    net = DogVerifier(pretrained=False, probe=(weight, bias)).eval()
    x = torch.from_numpy(rng.uniform(0, 255, (2, 3, 224, 224)).astype(np.float32))
    with torch.no_grad():
        feats = net.features(x)
        mass = net.breed_mass(feats).numpy()
        out = net(x).numpy()
    assert out.shape == (2, 2)  # the breed mass, then the probe
    np.testing.assert_allclose(out[:, 0], mass, rtol=1e-5)
    np.testing.assert_allclose(out[:, 1], 1 / (1 + np.exp(-(feats.numpy() @ weight + bias))), rtol=1e-4)
    with torch.no_grad():
        assert DogVerifier(pretrained=False).eval()(x).shape == (2,)  # untrained: the breed mass alone
    # Exported (ImageNet weights, the same probe): onnxruntime gives what torch gives.
    probe = Probe(weight, bias, {})
    path = export_verifier_onnx(tmp_path / "verifier.onnx", probe)
    with torch.no_grad():
        expected = DogVerifier(pretrained=True, probe=(weight, bias)).eval()(x).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"image": x.numpy()})[0], expected, atol=1e-4)


def test_candidate_boxes_are_labelled_by_their_overlap_with_the_dog():
    from hindsight_training.dataset import load_animalpose
    from hindsight_training.verifier import candidate_boxes
    from tests.conftest import ANIMALPOSE, need_shared
    from vision.model.detector import DogPoseModel
    from vision.model.geometry import read_rgb

    need_shared(ANIMALPOSE)
    model = DogPoseModel.load(threads=1)
    records = [r for r in load_animalpose(ANIMALPOSE) if r.split == "train" and len(r.instances) == 1][:6]
    seen_dog = False
    for rec in records:
        image = read_rgb(ANIMALPOSE / "images" / rec.file)
        samples = candidate_boxes(model, rec, image)
        assert samples, "the whole frame is always a candidate"
        boxes = np.array([s.box for s in samples], np.float32)
        overlap = box_iou(boxes, boxes) - np.eye(len(boxes))
        assert overlap.max() <= 0.9  # near duplicates dropped
        truth = box_iou(boxes, rec.instances[0].bbox[None])[:, 0]
        for s, iou in zip(samples, truth, strict=True):
            is_dog = rec.instances[0].species == "dog" and iou >= 0.5
            assert s.label == int(is_dog) and s.kind == ("candidate_dog" if is_dog else "candidate_other")
            seen_dog |= is_dog
    assert seen_dog
