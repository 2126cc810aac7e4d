"""Real owner clips (../shared/data/videos/owner_clips): what labels.json supports.

Each clip is tracked once per session (module fixture); the tests skip when the folder is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vision.clip_eval import ClipRow, evaluate_clip, find_clips

CLIPS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos" / "owner_clips"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CLIPS / "labels.json").is_file(), reason="../shared/data/videos/owner_clips is absent"),
]


@pytest.fixture(scope="module")
def labels() -> dict:
    return json.loads((CLIPS / "labels.json").read_text(encoding="utf-8"))["clips"]


@pytest.fixture(scope="module")
def rows() -> dict[str, ClipRow]:
    from vision.pose import default_backend

    backend = default_backend()
    return {p.name: evaluate_clip(p, backend) for p in find_clips(CLIPS)}


def test_no_unscoreable_clip_is_scored_and_each_gets_a_reason(rows, labels):
    for name, row in rows.items():
        if labels[name]["scoreable"] is False:
            assert not row.scored, name
            assert row.reasons and all(r.strip() for r in row.reasons), name


def test_every_scoreable_clip_is_scored(rows, labels):
    refused = [n for n, r in rows.items() if labels[n]["scoreable"] is True and not r.scored]
    assert refused == []


def test_most_scoreable_clips_are_scored(rows, labels):
    scoreable = [n for n in rows if labels[n]["scoreable"] is True]
    assert sum(rows[n].scored for n in scoreable) >= len(scoreable) - 2


def test_no_hind_side_is_named_against_the_labels(rows, labels):
    for name, row in rows.items():
        named = row.held_up_side or row.weaker_side
        if named and labels[name]["side"]:
            assert named == labels[name]["side"], name


def test_clip07_left_hind_limp_is_not_called_right_or_a_gallop(rows):
    row = rows["clip07.mp4"]
    assert row.gait_type != "gallop"
    assert (row.held_up_side or row.weaker_side) in (None, "left")


def test_clip17_forelimb_case_has_no_weak_hind_leg(rows):
    row = rows["clip17.mp4"]
    assert row.weaker_side is None and row.held_up_side is None


def test_clip26_sound_dog_has_no_flag(rows):
    row = rows["clip26.mp4"]
    assert not row.weaker_side and not row.wobble_flag and not row.held_up_side


def test_sound_or_bilateral_dogs_scored_are_not_flagged(rows, labels):
    for name, row in rows.items():
        if row.scored and not labels[name]["side"]:
            assert not row.weaker_side and not row.wobble_flag and not row.held_up_side, name


def test_no_side_or_phase_comes_from_hind_labels_that_do_not_follow_the_legs(rows):
    """Labels that seldom change order name places, not legs: nothing that pairs the legs may be shown."""
    judged = [row for row in rows.values() if row.scored and row.label_changes_per_stride is not None]
    assert judged, "no scored clip had its hind labels judged"
    for row in judged:
        if row.label_changes_per_stride < 1.0:
            assert row.weaker_side is None and row.hind_phase is None and row.asymmetry_pct is None, row.clip
