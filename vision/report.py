"""The analysis report: its typed form, its JSON Schema and its version, defined once.

Scope: the contract between the analysis (which writes a report) and everything that reads one
(compare, the PDF, the dashboard, storage, the CLI's ``--json``). A report is a JSON object; this
module gives it typed blocks (:class:`Report` and one class per block), validation
(:meth:`Report.from_dict`), the plain form (:meth:`Report.to_dict`) and the JSON Schema
(:func:`json_schema`, shipped as ``vision/report.schema.json``).

Every block names the fields readers rely on, with their types; a block may carry more detail
(per-stride values, notes, diagnostics) that passes through unchanged. Values that could not be
measured are None, never a number standing in for one. Units are in the field names (``_pct``,
``_s``, ``_hz``, ``_bl`` = body lengths, ``_px``) or in an estimate's ``unit``.

Regenerate the schema file after changing a block::

    python -m vision.report > vision/report.schema.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Version of the report's layout; a reader refuses a report of another version.
SCHEMA_VERSION = 1

SCHEMA_FILE = Path(__file__).with_name("report.schema.json")

Side = Literal["left", "right"]


class _Block(BaseModel):
    """A report block: the named fields typed, any further detail kept as it is."""

    model_config = ConfigDict(extra="allow")


class Estimate(_Block):
    """One measured quantity with its 95 % interval and evidence.

    ``value`` and ``ci95`` are None when too few strides were measured; ``per_stride`` holds the
    per-stride (or per-frame) values the estimate was made from, which a comparison resamples.
    """

    value: float | None = None
    ci95: tuple[float, float] | None = None
    sd: float | None = None
    n: int = 0
    evidence: str = "insufficient"
    unit: str = ""
    per_stride: list[float | None] = Field(default_factory=list)


class VideoSource(_Block):
    """The clip as decoded: its file name (no folder), codec, size, rate and length."""

    path: str
    codec: str
    width: int
    height: int
    fps: float
    duration_s: float
    n_frames: int


class Source(_Block):
    """Where the tracks came from: the file, its kind, the keypoint model and its version."""

    file: str | None = None
    kind: Literal["video", "poses"] | None = None
    backend: str | None = None
    model_version: str | None = None
    video: VideoSource | None = None
    individual: str


class Quality(_Block):
    """The quality gate: whether the clip can be scored, why not, and how to film it better."""

    usable: bool
    reasons: list[str]
    advice: list[str]
    notes: list[str] = Field(default_factory=list)
    view: str
    direction: str | None = None
    hind_strides: int
    fps: float | None = None
    dog_frames_share: float | None = None
    dog_size_share: float | None = None
    camera_motion: str | None = None
    picture_share: float | None = None


class PawEvents(_Block):
    """One hind paw's strikes and lift-offs, seconds on the clip's clock."""

    strikes_s: list[float]
    lift_offs_s: list[float]


class Gait(_Block):
    """Stride time, duty factor and speed of the hind limbs, and their paw events."""

    stride_time_s: Estimate
    duty_factor: Estimate
    speed_bl_per_s: Estimate
    body_length_px: float | None = None
    events: dict[str, PawEvents] = Field(default_factory=dict)


class Symmetry(_Block):
    """Hind-limb symmetry: signed weakness (+ = right weaker), its magnitude only beyond noise."""

    hind_asymmetry_pct: float | None = None
    within_noise: bool | None = None
    weaker_side: Side | None = None
    weakness_pct: Estimate | None = None
    stance_time_si: Estimate | None = None
    pelvis_min_diff_pct_bl: Estimate | None = None
    legs_told_apart: bool | None = None
    reason: str | None = None


class BunnyHop(_Block):
    """Hind-limb phase (0.5 alternating, 0 or 1 together) and the bunny-hop flag."""

    hind_phase: float | None = None
    hind_phase_ci95: tuple[float, float] | None = None
    n_judged_strides: int = 0
    gait_type: str | None = None
    phase_deviation: Estimate | None = None
    note: str | None = None
    flag: bool | None = None


class Ataxia(_Block):
    """Stride-to-stride variability of the hind limbs (coefficients of variation, %)."""

    stride_time_cv_pct: Estimate
    stride_length_cv_pct: Estimate
    ataxia_flag: bool | None = None
    strides_kept: int = 0
    strides_rejected: int = 0


class Tremor(_Block):
    """Hind-limb tremor: the dominant frequency when a peak stands out, and the flag."""

    tremor_hz: float | None = None
    nyquist_hz: float | None = None
    note: str | None = None
    flag: bool | None = None


class Wobble(_Block):
    """Ataxia and tremor together; ``flag`` when either is flagged."""

    flag: bool | None = None
    tremor_hz: float | None = None
    ataxia: Ataxia | None = None
    tremor: Tremor | None = None


class HeldUpLeg(_Block):
    """A hind leg held up or barely touching the ground, and its side."""

    flag: bool | None = None
    side: Side | None = None
    reason: str | None = None


class Muscle(_Block):
    """Thigh muscle indices from the silhouette, and posture signs."""

    available: bool
    view: str | None = None
    reason: str | None = None
    thigh_width_index: Estimate | None = None
    thigh_weakness_pct: Estimate | None = None
    thigh_asymmetry_pct: float | None = None
    weaker_side: Side | None = None
    hind_fore_ratio: Estimate | None = None


class HindLabels(_Block):
    """Whether the hind-paw labels followed the legs (:mod:`vision.gait.identity`)."""

    order_changes: int = 0
    strides_seen: float = 0.0
    changes_per_stride: float | None = None
    left_ahead_share: float | None = None
    follow_legs: bool | None = None


class Metrics(_Block):
    """Every metric block of a report; ``withheld`` when the clip could not be scored."""

    gait: Gait
    symmetry: Symmetry
    bunny_hop: BunnyHop
    wobble: Wobble
    held_up_leg: HeldUpLeg | None = None
    hind_labels: HindLabels | None = None
    muscle: Muscle
    withheld: bool = False


class Report(_Block):
    """One clip's analysis."""

    schema_version: Literal[1]
    hindsight_version: str
    analysed_at: str
    source: Source
    quality: Quality
    metrics: Metrics
    summary: list[str]
    provenance: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Validate a report's plain form.

        Raises
        ------
        pydantic.ValidationError
            When a named field is missing or of the wrong type, or the schema version differs.
        """
        return cls.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        """The plain, JSON-ready form: the fields it was made from, the extra detail included."""
        return self.model_dump(mode="json", exclude_unset=True)


def json_schema() -> dict[str, Any]:
    """The report's JSON Schema (draft 2020-12), generated from :class:`Report`."""
    schema = Report.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://hindsight.example/report/v{SCHEMA_VERSION}.schema.json"
    return schema


def main() -> int:
    """Print the JSON Schema (``python -m vision.report > vision/report.schema.json``)."""
    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
