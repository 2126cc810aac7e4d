"""The command line as a user runs it: a separate process, stdout JSON only, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vision.io import save_poses
from vision.synthetic import generate, mirror_labels
from vision.video import write_video


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("HINDSIGHT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "vision", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def truth_files(tmp_path_factory):
    """Synthetic tracks the engine has never seen: random seeds, limp side, phase, tremor."""
    d = tmp_path_factory.mktemp("truth")
    rng = np.random.default_rng(20261122)
    files = []
    for i in range(3):
        side = ["left", "right"][i % 2]
        phase = float(rng.uniform(0.35, 0.65))
        hz = float(rng.uniform(4.0, 12.0))
        c = generate(
            limp_side=side,
            limp_severity=float(rng.uniform(0.35, 0.6)),
            hind_phase=phase,
            tremor_hz=hz,
            tremor_amp_bl=0.015,
            jitter_px=1.5,
            dropout_rate=0.05,
            seed=int(rng.integers(1e6)),
            swap_segments=((3.0, 4.0),),
            direction=int(rng.choice([-1, 1])),
        )
        p = save_poses(c.tracks, d / f"dog{i}.csv")
        files.append((p, side, phase, hz))
    return files


def test_analyze_recovers_truth_from_unseen_tracks(truth_files):
    for path, side, phase, hz in truth_files:
        out = run("analyze", str(path), "--fps", "30", "--json", "--quiet")
        assert out.returncode == 0, out.stderr
        r = json.loads(out.stdout)
        assert r["quality"]["usable"] is True
        m = r["metrics"]
        assert m["symmetry"]["weaker_side"] == side
        assert abs(m["bunny_hop"]["hind_phase"] - phase) <= 0.08
        assert m["bunny_hop"]["flag"] is False
        assert m["wobble"]["tremor_hz"] == pytest.approx(hz, abs=0.5)
        assert m["wobble"]["flag"] is True


def test_required_report_keys(truth_files):
    out = run("analyze", str(truth_files[0][0]), "--fps", "30", "--json")
    r = json.loads(out.stdout)
    for path in (
        "quality.usable",
        "quality.reasons",
        "quality.view",
        "quality.hind_strides",
        "metrics.symmetry.hind_asymmetry_pct",
        "metrics.symmetry.weaker_side",
        "metrics.bunny_hop.hind_phase",
        "metrics.bunny_hop.flag",
        "metrics.wobble.tremor_hz",
        "metrics.wobble.flag",
    ):
        node = r
        for key in path.split("."):
            assert key in node, path
            node = node[key]
    assert r["metrics"]["symmetry"]["hind_asymmetry_pct"] >= 0


def test_stdout_is_only_json_and_progress_goes_to_stderr(truth_files):
    out = run("analyze", str(truth_files[0][0]), "--fps", "30", "--json")
    json.loads(out.stdout)  # nothing else on stdout
    assert "analysing" in out.stderr


def test_compare_flags_worsening_and_not_same_gait(tmp_path):
    reports = {}
    for name, kw in {
        "a": {"seed": 1, "limp_side": "left", "limp_severity": 0.2},
        "b": {"seed": 2, "limp_side": "left", "limp_severity": 0.2},
        "c": {"seed": 3, "limp_side": "left", "limp_severity": 0.6},
    }.items():
        p = save_poses(generate(**kw).tracks, tmp_path / f"{name}.nc")
        rp = tmp_path / f"{name}.json"
        assert run("analyze", str(p), "--report", str(rp), "--quiet").returncode == 0
        reports[name] = rp
    same = json.loads(run("compare", str(reports["a"]), str(reports["b"]), "--json").stdout)
    assert same["flag"] is False
    worse = json.loads(run("compare", str(reports["a"]), str(reports["c"]), "--json").stdout)
    assert worse["flag"] is True
    m = worse["metrics"]["hind_asymmetry_pct"]
    assert {"before", "after", "change", "ci95", "status"} <= set(m) and m["status"] == "worse"
    # the text output prints the comparison's notes, here that a newer model tracked the second clip
    newer = json.loads(reports["c"].read_text())
    newer["source"]["model_version"], older = "9.1", json.loads(reports["a"].read_text())
    older["source"]["model_version"] = "9.0"
    for name, report in (("older", older), ("newer", newer)):
        (tmp_path / f"{name}.json").write_text(json.dumps(report))
    text = run("compare", str(tmp_path / "older.json"), str(tmp_path / "newer.json")).stdout
    assert "note: The clips were tracked by different versions of the keypoint model (9.0, then 9.1)" in text
    assert text.rstrip().endswith("FLAG: worse beyond noise")


def test_mirrored_file_flips_side(tmp_path):
    c = generate(seed=5, limp_side="right", limp_severity=0.5)
    a = save_poses(c.tracks, tmp_path / "a.csv")
    b = save_poses(mirror_labels(c.tracks), tmp_path / "b.csv")
    ra = json.loads(run("analyze", str(a), "--fps", "30", "--json").stdout)
    rb = json.loads(run("analyze", str(b), "--fps", "30", "--json").stdout)
    assert ra["metrics"]["symmetry"]["weaker_side"] == "right"
    assert rb["metrics"]["symmetry"]["weaker_side"] == "left"


def test_info_lists_decoders():
    out = run("info", "--json")
    assert out.returncode == 0
    info = json.loads(out.stdout)
    assert info["decoders"]["h264"] is True and info["decoders"]["hevc"] is True
    assert "model" in info


def test_info_names_the_models_version_and_its_validation_figures():
    from vision.model.manifest import default_model_path, model_summary

    manifest = json.loads(default_model_path().read_text())
    model = json.loads(run("info", "--json").stdout)["model"]
    val = manifest["metrics"]["val_evaluation"]
    assert model["version"] == manifest["version"]
    figures = model["validation"]
    assert figures["hind_limb_pck10_gt_box"] == round(val["gt_box"]["pck10"]["hind_limb"], 3)
    assert figures["hind_limb_pck10_end_to_end"] == round(val["pipeline"]["pck10"]["hind_limb"], 3)
    assert figures["dogs_found"] == round(val["detection"]["found_iou50"], 3)
    side_on = val["standing_side_on"]["gt_box"]["hind_limb"]["rate"]
    assert figures["hind_limb_pck10_standing_side_on"] == round(side_on, 3)
    # an older manifest without some figures: what it has, None for the rest
    assert model_summary({"version": "0.1"}) == {"version": "0.1"}
    old = model_summary({"version": "0.5", "metrics": {"val_evaluation": {"gt_box": {"pck10": {"hind_limb": 0.6667}}}}})
    assert old["validation"] == {
        "hind_limb_pck10_gt_box": 0.667,
        "hind_limb_pck10_end_to_end": None,
        "dogs_found": None,
        "hind_limb_pck10_standing_side_on": None,
    }


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    files = {}
    files["empty"] = tmp / "empty.mp4"
    files["empty"].write_bytes(b"")
    files["text"] = tmp / "notes.mp4"
    files["text"].write_text("this is not a video")
    files["random"] = tmp / "random.mov"
    files["random"].write_bytes(np.random.default_rng(0).bytes(5000))
    good = write_video(tmp / "good.mp4", [np.full((64, 64, 3), i * 4, np.uint8) for i in range(60)], 30)
    data = good.read_bytes()
    files["truncated"] = tmp / "truncated.mp4"
    files["truncated"].write_bytes(data[: len(data) // 4])
    files["too_short"] = write_video(tmp / "short.mp4", [np.zeros((64, 64, 3), np.uint8)] * 10, 30)
    whole = write_video(tmp / "whole.mp4", [np.full((64, 64, 3), i % 250, np.uint8) for i in range(300)], 30)
    files["cut_short"] = tmp / "cut_short.mp4"  # a 10 s upload cut at 95 %: its header still says 10 s
    files["cut_short"].write_bytes(whole.read_bytes()[: int(0.95 * whole.stat().st_size)])
    from PIL import Image

    files["still_image"] = tmp / "photo.mp4"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(files["still_image"], format="JPEG")
    files["audio_only"] = tmp / "audio.m4a"
    import av

    with av.open(str(files["audio_only"]), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        for pkt in s.encode(frame):
            c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    files["pose_unknown"] = tmp / "poses.csv"
    files["pose_unknown"].write_text("scorer,s,s,s\nbodyparts,banana,banana,banana\ncoords,x,y,likelihood\n0,1,2,1\n")
    files["pose_short"] = save_poses(generate(duration_s=0.5).tracks, tmp / "short_poses.nc")
    files["hostile"] = tmp / "$(rm -rf ~);\n\x1b[31m.mp4"
    files["hostile"].write_bytes(b"garbage")
    files["missing"] = tmp / "does_not_exist.mp4"
    return files


def test_bad_input_gives_one_line_error_and_exit_2(tmp_path):
    for name, path in _bad_inputs(tmp_path).items():
        out = run("analyze", str(path), "--fps", "30", "--json")
        assert out.returncode == 2, (name, out.stderr)
        assert out.stdout == "", name
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, out.stderr)
        assert "Traceback" not in out.stderr
        assert "\x1b" not in out.stderr
        if name == "cut_short":
            assert "the file ends early" in lines[0] and "of 10.0 s): upload it again" in lines[0]
        if name == "still_image":
            assert lines[0].startswith("error: not a video:"), lines


def test_bad_reports_for_compare(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = run("compare", str(bad), str(bad))
    assert out.returncode == 2 and out.stderr.startswith("error: ")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    assert run("compare", str(other), str(other)).returncode == 2


def test_bad_input_leaves_the_file_untouched(tmp_path):
    p = tmp_path / "keep.mp4"
    p.write_bytes(b"not a video at all")
    run("analyze", str(p))
    assert p.read_bytes() == b"not a video at all"


def test_keypoints_reports_each_bad_image_and_goes_on(tmp_path):
    bad = _bad_inputs(tmp_path)
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((120, 160, 3), 128, np.uint8))
    # A photo renamed .mp4 is a bad video but a readable image: not one of the bad images here.
    paths = [str(p) for p in bad.values() if p.name != "photo.mp4"] + [str(blank)]
    out = run("keypoints", *paths, "--json")
    assert out.returncode == 2, out.stderr
    entries = json.loads(out.stdout)
    assert [e["image"] for e in entries] == paths
    assert all("error" in e and e["dogs"] == [] for e in entries[:-1])
    assert entries[-1] == {"image": str(blank), "dogs": []}
    lines = out.stderr.strip().splitlines()
    assert len(lines) == len(paths) - 1 and all(line.startswith("error: ") for line in lines), out.stderr
    assert "Traceback" not in out.stderr and "\x1b" not in out.stderr and "WARN" not in out.stderr


def test_the_demo_server_listens_on_this_machine_only_unless_told():
    from vision.cli import build_parser

    assert build_parser().parse_args(["demo", "--serve"]).address == "127.0.0.1"
    assert build_parser().parse_args(["demo", "--address", "0.0.0.0"]).address == "0.0.0.0"


def test_the_dashboard_script_is_shipped_in_the_package():
    import vision
    from vision.dashboard.app import SCRIPT

    assert SCRIPT.is_file() and SCRIPT.is_relative_to(Path(vision.__file__).parent)
