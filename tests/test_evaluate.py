"""``python -m vision.evaluate --clip``: the model's tracks on the real clip against the reference track."""

from __future__ import annotations

import json

import pytest

from vision import evaluate


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
