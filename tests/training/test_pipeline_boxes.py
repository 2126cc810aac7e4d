"""The boxes the pipeline reads labelled animals in (stand-in model of known behaviour)."""

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="training tests need torch (the train extra)")

from hindsight_training import dataset as ds  # noqa: E402
from hindsight_training.pipeline_boxes import (  # noqa: E402
    FORMAT,
    load_pipeline_boxes,
    pipeline_boxes,
    pipeline_boxes_of_image,
)


class ShrinkingModel:
    """Detector candidates as given; placing a box shrinks it by 10 px on each side."""

    def __init__(self, candidates: np.ndarray) -> None:
        self._cand = np.asarray(candidates, np.float32).reshape(-1, 4)
        self.placed: list[np.ndarray] = []

    def candidates(self, image_rgb, max_dogs=5, min_score=None):
        return self._cand, np.ones(len(self._cand), np.float32), None

    def place_boxes(self, image_rgb, boxes):
        self.placed.append(np.asarray(boxes).copy())
        return np.asarray(boxes, np.float32) + np.array([10, 10, -10, -10], np.float32)


def test_a_matching_candidate_stands_for_the_label_box_else_the_label_box_is_placed():
    labels = np.array([[0, 0, 100, 100], [300, 300, 400, 380]], np.float32)
    model = ShrinkingModel([[5, 5, 105, 95], [600, 0, 700, 100]])  # overlaps the first label only
    found = pipeline_boxes_of_image(model, np.zeros((500, 800, 3), np.uint8), labels)
    assert [p.from_detector for p in found] == [True, False]
    np.testing.assert_allclose(found[0].box, [15, 15, 95, 85])  # the candidate, placed
    np.testing.assert_allclose(found[1].box, [310, 310, 390, 370])  # the label box, placed
    assert len(model.placed) == 1  # one batched placement per image


def test_one_candidate_stands_for_one_label_only():
    # Two dogs side by side, one candidate overlapping both: it goes to the dog it overlaps best
    # (as the evaluation matches detections), the other dog keeps its label box.
    labels = np.array([[0, 0, 100, 100], [60, 0, 160, 100]], np.float32)
    model = ShrinkingModel([[40, 0, 150, 100]])  # IoU 0.40 with the first label, 0.75 with the second
    found = pipeline_boxes_of_image(model, np.zeros((200, 200, 3), np.uint8), labels)
    assert [p.from_detector for p in found] == [False, True]
    np.testing.assert_allclose(found[0].box, [10, 10, 90, 90])
    np.testing.assert_allclose(found[1].box, [50, 10, 140, 90])


def test_no_candidates_places_every_label_box():
    labels = np.array([[0, 0, 100, 100]], np.float32)
    found = pipeline_boxes_of_image(ShrinkingModel(np.zeros((0, 4))), np.zeros((200, 200, 3), np.uint8), labels)
    assert not found[0].from_detector
    np.testing.assert_allclose(found[0].box, [10, 10, 90, 90])
    assert pipeline_boxes_of_image(ShrinkingModel(labels), np.zeros((9, 9, 3), np.uint8), np.zeros((0, 4))) == []


def test_boxes_are_saved_in_instance_order_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr("hindsight_training.pipeline_boxes.read_rgb", lambda path: np.zeros((500, 800, 3), np.uint8))
    kps = np.zeros((20, 3), np.float32)
    rec = ds.Record(
        "a b.jpg",
        "train",
        800,
        500,
        (
            ds.Instance("cat", np.array([300, 300, 400, 380], np.float32), kps),
            ds.Instance("dog", np.array([0, 0, 100, 100], np.float32), kps),
        ),
    )
    empty = ds.Record("empty.jpg", "train", 800, 500, ())
    result = pipeline_boxes(ShrinkingModel([[5, 5, 105, 95]]), [rec, empty], tmp_path)
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(result))
    boxes = load_pipeline_boxes(path)
    assert set(boxes) == {"a b.jpg"}
    np.testing.assert_allclose(boxes["a b.jpg"], [[310, 310, 390, 370, 0], [15, 15, 95, 85, 1]])


def test_a_file_of_another_format_is_refused(tmp_path):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps({"format": FORMAT + 1, "boxes": {}}))
    with pytest.raises(ValueError, match="not a pipeline-boxes file"):
        load_pipeline_boxes(path)


def test_the_command_stops_with_one_line_without_a_model_or_data(tmp_path):
    from hindsight_training.pipeline_boxes import main

    for argv in (
        ["--model", str(tmp_path / "missing.json"), "--out", str(tmp_path / "b.json")],
        ["--data", str(tmp_path / "no_data"), "--out", str(tmp_path / "b.json")],
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert str(stop.value).startswith("error: ") and "\n" not in str(stop.value)
    assert not (tmp_path / "b.json").exists()
