"""``python -m hindsight_training.evaluate``: two models compared; ``--clip``: tracks against a reference."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch", reason="training tests need torch (the train extra)")

from hindsight_training import evaluate  # noqa: E402
from hindsight_training.metrics import HIND_LIMB_INDEX, summarise_pck  # noqa: E402
from vision.anatomy import CANONICAL_KEYPOINTS  # noqa: E402


def test_clip_agreement_with_the_reference_track(forever_dog, capsys):
    evaluate.main(
        ["--clip", str(forever_dog / "dog.mp4"), "--reference", str(forever_dog / "dog_vitpose_ap10k.json"), "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == 278 and out["tolerance"] == 0.1
    rows = out["keypoints"]
    assert "withers" not in rows  # the reference (AP-10K) has no withers: only shared keypoints
    hind = rows["HIND_LIMB"]
    assert hind["frames"] > 1500
    # Two models on one clip: they agree far more often than chance and a swap never lowers agreement.
    assert 0.5 < hind["share"] <= hind["swap_allowed"] <= 1.0
    assert rows["tail_base"]["share"] > 0.7
    # The swaps analyze repairs on this gallop must not cost agreement: a wrong repair reads as a lame leg.
    # (The repair before the hidden Markov model exchanged 78 hind-leg frames here, 0.813 -> 0.746.)
    assert set(out["swaps_repaired"]) == {"stifle_hock_hind_paw", "elbow_carpus_front_paw", "eye_ear"}
    assert hind["after_swap_repair"] >= hind["share"] - 0.01


def _phone_version(forever_dog, tmp_path, frames: int, portrait: bool) -> tuple[Path, Path]:
    """The clip's first ``frames`` frames and its reference; ``portrait``: as a phone films it upright.

    The portrait clip is 720 x 1280 HEVC, stored sideways with a 90-degree display rotation, the dog
    scaled 2.5x; the reference points move with it.
    """
    from vision.video import iter_frames, write_video

    images = [f.image for f in iter_frames(forever_dog / "dog.mp4")][:frames]
    ref = json.loads((forever_dog / "dog_vitpose_ap10k.json").read_text())
    ref["frames"] = ref["frames"][:frames]
    name = "portrait" if portrait else "original"
    if portrait:
        scale, top = 2.5, (1280 - 216 * 2.5) // 2
        big = [cv2.resize(im, (720, 540), interpolation=cv2.INTER_CUBIC) for im in images]
        images = [
            np.rot90(cv2.copyMakeBorder(b, int(top), 1280 - 540 - int(top), 0, 0, cv2.BORDER_REPLICATE)) for b in big
        ]
        ref["frames"] = [[[x * scale, y * scale + top, c] for x, y, c in f] for f in ref["frames"]]
    ref["video"] = f"{name}.mp4"
    video, reference = tmp_path / f"{name}.mp4", tmp_path / f"{name}.json"
    write_video(video, images, 30.0, codec="libx265" if portrait else "libx264", rotation=90 if portrait else 0)
    reference.write_text(json.dumps(ref))
    return video, reference


def test_a_portrait_phone_clip_is_read_upright_and_tracked_as_well(forever_dog, tmp_path):
    from vision.video import probe

    original = evaluate.clip_agreement(*_phone_version(forever_dog, tmp_path, 120, portrait=False))
    video, reference = _phone_version(forever_dog, tmp_path, 120, portrait=True)
    info = probe(video)
    assert (info.width, info.height, info.rotation) == (720, 1280, 90)
    portrait = evaluate.clip_agreement(video, reference)
    hind, before = portrait["keypoints"]["HIND_LIMB"], original["keypoints"]["HIND_LIMB"]
    assert hind["frames"] == before["frames"]  # the same reference points count
    # Measured: 0.831 in portrait against 0.798 (first 120 frames). Read sideways, it would be near 0.
    assert hind["share"] >= before["share"] - 0.03 and hind["share"] > 0.75


def test_swaps_found_on_a_uniform_grid_return_to_the_frames_nearest_them():
    # A variable-rate clip; analyze repairs on a 20 ms grid. 0.058 s is nearest 0.06 (swapped) and
    # 0.139 s nearest 0.14 (not), where the grid point before each would say the opposite.
    times = np.array([0.0, 0.03, 0.058, 0.10, 0.139, 0.20])
    grid = np.arange(11) * 0.02
    flags = (grid > 0.05) & (grid < 0.13)  # a swap from 0.06 to 0.12 s
    out = evaluate.swaps_at_times({"stifle_hock_hind_paw": flags}, grid, times)
    assert out["stifle_hock_hind_paw"].tolist() == [False, False, True, True, False, False]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_on_a_constant_rate_clip_the_frames_keep_the_grids_swaps(flags):
    times = np.arange(len(flags)) / 30.0
    out = evaluate.swaps_at_times({"eye_ear": np.array(flags)}, times.copy(), times)
    assert out["eye_ear"].tolist() == flags


def test_clip_needs_a_reference(forever_dog, capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--clip", str(forever_dog / "dog.mp4")])
    assert "--clip needs --reference" in capsys.readouterr().err


def test_clip_and_reference_of_different_lengths_is_one_line_error(forever_dog, tmp_path, capsys):
    ref = json.loads((forever_dog / "dog_vitpose_ap10k.json").read_text())
    ref["frames"] = ref["frames"][:100]
    short = tmp_path / "short.json"
    short.write_text(json.dumps(ref))
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--clip", str(forever_dog / "dog.mp4"), "--reference", str(short)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: dog.mp4 has 278 frames, short.json 100"


def _collected(hits10: np.ndarray, found: list[bool]) -> dict:
    """What :func:`evaluate.collect_hits` returns, for given hits (the same at both alphas)."""
    modes = {mode: {a: hits10.copy() for a in evaluate.ALPHAS} for mode in ("gt_box", "pipeline")}
    return {**modes, "found": np.array(found), "n_instances": len(hits10), "side_on": np.zeros(len(hits10), bool)}


def test_comparison_reports_the_candidates_gain_where_it_is():
    k = len(CANONICAL_KEYPOINTS)
    base = np.zeros((40, k))
    cand = base.copy()
    cand[:, list(HIND_LIMB_INDEX)] = 1.0  # better on the hind limbs only
    result = evaluate.compare_hits(_collected(base, [True, False]), _collected(cand, [True, True]))
    hind, every = result["pipeline"]["pck10"]["hind_limb"], result["pipeline"]["pck10"]["all"]
    assert hind["difference"] == 1.0 and hind["low"] == 1.0
    assert every["difference"] == pytest.approx(len(HIND_LIMB_INDEX) / k)
    assert result["found"]["a"] == 0.5 and result["found"]["b"] == 1.0
    table = evaluate.format_comparison(result, "old.json", "new.json")
    assert "new.json against old.json" in table
    assert "pipeline hind_limb @.1" in table and "+1.000" in table and "found (single-animal)" in table


def test_the_side_on_figures_pool_only_the_dogs_standing_side_on():
    k = len(CANONICAL_KEYPOINTS)
    hits = np.zeros((40, k))
    hits[:10] = 1.0  # the ten side-on dogs are read right, the others wrong
    collected = _collected(hits, [True, False, True, True])
    collected["side_on"][:10] = True
    collected["found_side_on"] = np.array([True, True, False, False])
    side = evaluate.side_on_figures(collected)
    assert side["n_instances"] == 10
    for mode in ("gt_box", "pipeline"):
        assert side[mode]["hind_limb"]["rate"] == 1.0 and side[mode]["all"]["n_instances"] == 10
    assert (side["found"], side["single_animal_images"]) == (1, 2)
    result = {
        "gt_box": {"pck05": summarise_pck(hits), "pck10": summarise_pck(hits)},
        "n_instances": 40,
        "standing_side_on": side,
    }
    line = evaluate.format_table(result).splitlines()[-1]
    assert line.startswith("standing side-on (the filming setting), 10 animals: hind-limb PCK@0.1 GT box 1.000")
    assert "end to end 1.000" in line and "found in 1 of 2 images" in line
    collected["side_on"][:] = False
    assert evaluate.side_on_figures(collected)["gt_box"] is None


def test_a_missing_model_or_baseline_is_a_one_line_error(tmp_path, capsys):
    for args in (["--model", str(tmp_path / "none.json")], ["--baseline", str(tmp_path / "none.json")]):
        with pytest.raises(SystemExit) as exit_info:
            evaluate.main(args)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: dog pose model not found") and "\n" not in err


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--data", str(tmp_path)])
    assert exit_info.value.code == 2
    expected = f"error: no Animal-Pose data in {tmp_path} (annotations.json missing); pass --data"
    assert capsys.readouterr().err.strip() == expected
