from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision.anatomy import CANONICAL_KEYPOINTS
from vision.pose import FramePose, ModelTracker, PoseBackend


@dataclass(frozen=True)
class Det:
    bbox_xyxy: np.ndarray
    score: float
    keypoints: np.ndarray


class TwoDogsModel:
    """A stand-in detector: two dogs, the second one scoring higher after frame 5."""

    def __init__(self):
        self.frame = 0
        self.detect_calls = 0
        self.box_calls = 0

    def _dog(self, x0, score):
        kp = np.zeros((len(CANONICAL_KEYPOINTS), 3), np.float32)
        kp[:, 0] = x0 + np.linspace(0, 100, len(CANONICAL_KEYPOINTS)) + self.frame
        kp[:, 1] = 100 + np.linspace(0, 50, len(CANONICAL_KEYPOINTS))
        kp[:, 2] = 0.9
        return Det(np.array([kp[:, 0].min(), 100, kp[:, 0].max(), 150], np.float32), score, kp)

    def detect(self, image, max_dogs=5, min_score=0.3):
        self.detect_calls += 1
        a = self._dog(0, 0.8)
        b = self._dog(400, 0.9 if self.frame > 5 else 0.5)
        return sorted([a, b], key=lambda d: -d.score)

    def keypoints_in_box(self, image, bbox_xyxy, score=1.0):
        self.box_calls += 1
        x0 = 0 if bbox_xyxy[0] < 300 else 400
        return self._dog(x0, score)


def test_tracker_follows_the_same_dog_when_another_scores_higher():
    model = TwoDogsModel()
    tracker = ModelTracker(model, redetect_every=3)
    assert isinstance(tracker, PoseBackend)
    tracker.reset()
    xs = []
    for f in range(12):
        model.frame = f
        pose = tracker.get_pose(np.zeros((300, 800, 3), np.uint8))
        xs.append(pose.keypoints[0, 0] - f)
    assert np.allclose(xs, 0)  # always the first dog, even after the other one scores higher
    assert model.box_calls > model.detect_calls  # the cheap path is used between re-detections


class NoDogModel:
    def detect(self, image, max_dogs=5, min_score=0.3):
        return []

    def keypoints_in_box(self, image, bbox_xyxy, score=1.0):  # pragma: no cover - never reached
        raise AssertionError


def test_no_dog_gives_empty_pose():
    pose = ModelTracker(NoDogModel()).get_pose(np.zeros((50, 50, 3), np.uint8))
    assert pose.score == 0 and pose.bbox_xyxy is None and np.isnan(pose.keypoints).all()
    assert FramePose.empty().keypoints.shape == (20, 3)


def _followed_offsets(model, frames: int = 12) -> list[float]:
    """First keypoint's x minus the frame number over ``frames`` tracked frames (0 while the first dog is followed)."""
    tracker = ModelTracker(model, redetect_every=3)
    xs = []
    for f in range(frames):
        model.frame = f
        xs.append(tracker.get_pose(np.zeros((300, 800, 3), np.uint8)).keypoints[0, 0] - f)
    return xs


class ConfirmingModel(TwoDogsModel):
    """The two dogs, with the detector's cheap check of the followed dog (``confirm_dog``)."""

    def __init__(self, confirms: bool):
        super().__init__()
        self.confirms = confirms
        self.confirm_calls = 0
        self.boxes_read: list[np.ndarray] = []

    def confirm_dog(self, image, keypoints):
        self.confirm_calls += 1
        if not self.confirms:
            return None
        # the detector's box reaches 30 px left of the keypoints (e.g. the tail they missed)
        return np.array([keypoints[:, 0].min() - 30, 90, keypoints[:, 0].max(), 160], np.float32)

    def keypoints_in_box(self, image, bbox_xyxy, score=1.0):
        self.boxes_read.append(np.array(bbox_xyxy, np.float32))
        return super().keypoints_in_box(image, bbox_xyxy, score)


def test_a_confirmed_dog_is_checked_not_searched_for_and_its_box_covers_the_detectors():
    model = ConfirmingModel(confirms=True)
    xs = _followed_offsets(model)
    assert np.allclose(xs, 0)  # the same dog throughout
    assert model.detect_calls == 1  # only to find it in the first frame
    assert model.confirm_calls == 3  # frames 3, 6 and 9
    # the box read after a check (frame 4) reaches the detector's box, 30 px left of frame 3's keypoints
    kp_x0_frame3 = 0 + 3
    assert model.boxes_read[3][0] <= kp_x0_frame3 - 30 + 1e-3
    assert model.boxes_read[2][0] > kp_x0_frame3 - 30  # an ordinary box: keypoints and margins only


def test_an_unconfirmed_dog_is_searched_for_in_the_whole_frame():
    model = ConfirmingModel(confirms=False)
    xs = _followed_offsets(model)
    assert np.allclose(xs, 0)  # the search keeps the dog that overlaps the followed one
    assert model.confirm_calls == 3
    assert model.detect_calls == 1 + 3  # the first frame, then every failed check


def test_the_tracker_names_the_version_of_the_model_it_follows_with():
    model = TwoDogsModel()
    assert ModelTracker(model).model_version is None  # a model that does not say
    model.version = "0.7.1"
    assert ModelTracker(model).model_version == "0.7.1"


class CountingNoDogModel(NoDogModel):
    def __init__(self):
        self.detect_calls = 0

    def detect(self, image, max_dogs=5, min_score=0.3):
        self.detect_calls += 1
        return []


def test_a_lost_dog_is_searched_for_every_few_frames_not_on_every_frame():
    model = CountingNoDogModel()
    tracker = ModelTracker(model, search_every=3)
    for _ in range(9):
        assert tracker.get_pose(np.zeros((50, 50, 3), np.uint8)).score == 0
    assert model.detect_calls == 3  # frames 0, 3 and 6


class DetectorMissesModel(ConfirmingModel):
    """The followed dog's keypoints stay confident, but the detector stops seeing it after frame 0."""

    def __init__(self):
        super().__init__(confirms=False)

    def detect(self, image, max_dogs=5, min_score=0.3):
        if self.frame == 0:
            return super().detect(image, max_dogs, min_score)
        self.detect_calls += 1
        return []


def test_a_dog_in_plain_view_is_kept_through_weak_detector_frames_then_dropped():
    model = DetectorMissesModel()
    tracker = ModelTracker(model, redetect_every=2, max_unconfirmed=2)
    found = []
    for f in range(9):
        model.frame = f
        found.append(tracker.get_pose(np.zeros((300, 800, 3), np.uint8)).score > 0)
    # checks at frames 2, 4 (kept: two failed checks allowed) and 6 (dropped); lost frames 6-8 are searched at 6
    assert found == [True, True, True, True, True, True, False, False, False]


class HeadTrapModel(TwoDogsModel):
    """One dog whose head alone outscores its body at the detector, but reads weak keypoints."""

    def _read(self, box, conf):
        kp = np.zeros((len(CANONICAL_KEYPOINTS), 3), np.float32)
        kp[:, 0] = np.linspace(box[0] + 2, box[2] - 2, len(CANONICAL_KEYPOINTS))
        kp[:, 1] = (box[1] + box[3]) / 2
        kp[:, 2] = conf
        return Det(np.asarray(box, np.float32), 1.0, kp)

    def detect(self, image, max_dogs=5, min_score=0.3):
        self.detect_calls += 1
        head = self._read([400, 100, 440, 130], 0.2)
        body = self._read([100, 80, 440, 200], 0.7)
        return [Det(head.bbox_xyxy, 0.6, head.keypoints), Det(body.bbox_xyxy, 0.5, body.keypoints)]

    def keypoints_in_box(self, image, bbox_xyxy, score=1.0):
        width = float(bbox_xyxy[2] - bbox_xyxy[0])
        return self._read([100, 80, 440, 200], 0.7) if width > 150 else self._read(list(bbox_xyxy), 0.2)


def test_a_dog_part_that_outscores_the_dog_is_not_followed():
    tracker = ModelTracker(HeadTrapModel(), redetect_every=3)
    pose = tracker.get_pose(np.zeros((300, 800, 3), np.uint8))
    assert pose.keypoints[:, 0].min() < 150  # the whole dog, not its head (score x keypoint support ranks them)


def test_a_box_shrunk_onto_part_of_the_dog_is_read_again_larger():
    tracker = ModelTracker(HeadTrapModel(), redetect_every=100)
    tracker.get_pose(np.zeros((300, 800, 3), np.uint8))
    tracker._box = np.array([300, 100, 440, 140], np.float32)  # the box has shrunk onto the head
    pose = tracker.get_pose(np.zeros((300, 800, 3), np.uint8))
    assert float(np.mean(pose.keypoints[:, 2])) > 0.5  # read again in a box twice the size
