"""The report's contract: typed blocks, the shipped JSON Schema, and what the CLI prints against it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from vision.analysis import analyze_tracks
from vision.io import save_poses
from vision.report import SCHEMA_FILE, SCHEMA_VERSION, Report, json_schema
from vision.synthetic import generate

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def reports():
    """A scored clip (a left-hind limp), a clip too short to score, and a bunny hop."""
    kinds = [
        dict(seed=4, limp_side="left", limp_severity=0.6),
        dict(seed=2, duration_s=2.0),
        dict(seed=3, hind_phase=0.03),
    ]
    return [json.loads(json.dumps(analyze_tracks(generate(**kw).tracks).report)) for kw in kinds]


def test_the_shipped_schema_file_is_the_one_the_typed_report_gives():
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == json_schema()


def test_every_kind_of_report_validates_against_the_schema_and_round_trips(reports):
    validator = jsonschema.Draft202012Validator(json_schema())
    for report in reports:
        validator.validate(report)
        typed = Report.from_dict(report)
        assert typed.schema_version == SCHEMA_VERSION
        assert typed.to_dict() == report


def test_readers_get_typed_fields(reports):
    scored, short, _ = (Report.from_dict(r) for r in reports)
    assert scored.quality.usable and scored.metrics.symmetry.weaker_side == "left"
    assert scored.metrics.symmetry.weakness_pct is not None and scored.metrics.symmetry.weakness_pct.value < 0
    assert len(scored.metrics.gait.events["left_hind"].strikes_s) >= 6
    assert not short.quality.usable and short.quality.reasons
    assert short.metrics.symmetry.hind_asymmetry_pct is None


def test_a_report_that_breaks_the_contract_is_refused(reports):
    wrong_version = {**copy.deepcopy(reports[0]), "schema_version": SCHEMA_VERSION + 1}
    missing = copy.deepcopy(reports[0])
    del missing["quality"]["usable"]
    wrong_side = copy.deepcopy(reports[0])
    wrong_side["metrics"]["symmetry"]["weaker_side"] = "both"
    validator = jsonschema.Draft202012Validator(json_schema())
    for bad in (wrong_version, missing, wrong_side):
        with pytest.raises(ValidationError):
            Report.from_dict(bad)
        assert not validator.is_valid(bad)


@given(block=st.sampled_from(["symmetry", "bunny_hop", "wobble", "held_up_leg"]), seed=st.integers(0, 3))
def test_a_value_that_could_not_be_measured_is_none_and_still_valid(reports, block, seed):
    report = copy.deepcopy(reports[seed % len(reports)])
    for key, value in list(report["metrics"][block].items()):
        if isinstance(value, (float, str, bool)):  # measurements, sides and notes; counts stay counts
            report["metrics"][block][key] = None
    report["metrics"][block]["flag"] = None
    assert Report.from_dict(report).to_dict() == report


def test_the_cli_json_output_validates_against_the_schema(tmp_path):
    poses = save_poses(generate(seed=5, limp_side="right", limp_severity=0.4).tracks, tmp_path / "walk.nc")
    out = subprocess.run(
        [sys.executable, "-m", "vision", "analyze", str(poses), "--json"], capture_output=True, text=True, check=True
    )
    jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))).validate(
        json.loads(out.stdout)
    )
