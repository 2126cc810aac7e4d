"""Detail for vets (per-stride values, paw events, quality figures) and a glossary of the measures."""

from __future__ import annotations

from typing import Any

import streamlit as st

from vision.dashboard.cards import block, measure, number

GLOSSARY = {
    "Hind-leg asymmetry": "How differently the two hind legs work, from stance time and stride reach, as a symmetry "
    "index: 100 × (right − left) / mean, averaged over stride pairs (0 % = identical). A side is named weaker only "
    "when the 95 % interval excludes zero; otherwise the difference is within measurement noise.",
    "Hind phase": "When the right hind strikes within the left hind's stride: 0.5 = the hind legs alternate "
    "normally; near 0 (or 1) = both move together (bunny hopping), judged on walk and trot strides only.",
    "Hind legs told apart": "Whether the tracker followed each hind leg, or named the paws by place (front and "
    "back). Walking legs pass each other twice a stride, so labels that follow them change order about twice a "
    "stride; when they seldom do, no side is named and the hind phase is not shown.",
    "Stride variability": "Coefficient of variation of hind stride time and length. Normal dogs vary 20-28 % on a "
    "walkway; a rise against the dog's own earlier clips matters more than the number (ataxia, sway).",
    "Tremor": "A narrow peak in the hind legs' movement once the regular stride is taken away, from 3 Hz up to half "
    "the frame rate (at 30 fps only below 15 Hz; orthostatic tremor needs 60 fps or slow motion).",
    "Within noise": "A change or a difference smaller than the clips' own stride-to-stride variation; it cannot be "
    "told apart from chance.",
    "Evidence": "Strong when the stride-to-stride spread is under half the effect, moderate up to 1.2 times, weak "
    "above (Equinosis convention).",
}
SOURCES = "Definitions: Rhodin et al. 2017 (pelvic MinDiff/MaxDiff), the Equinosis evidence convention, and "
SOURCES += "Hindsight's gait-science notes (README, 'Metrics and their definitions')."


def glossary() -> None:
    """What each measure means, with its sources."""
    with st.expander("What the measures mean"):
        for term, meaning in GLOSSARY.items():
            st.write(f"**{term}.** {meaning}")
        st.caption(SOURCES)


def _per_stride_rows(report: dict[str, Any]) -> list[dict[str, str]]:
    sym = block(report, "metrics", "symmetry")
    columns = {
        "asymmetry %": block(sym, "weakness_pct").get("per_stride"),
        "stance-time SI %": block(sym, "stance_time_si").get("per_stride"),
        "reach SI %": block(sym, "excursion_si").get("per_stride"),
        "pelvic drop diff. % BL": block(sym, "pelvis_min_diff_pct_bl").get("per_stride"),
    }
    lists = {k: v for k, v in columns.items() if isinstance(v, list)}
    n = max((len(v) for v in lists.values()), default=0)
    return [
        {"stride pair": str(i + 1), **{k: measure(v[i] if i < len(v) else None) for k, v in lists.items()}}
        for i in range(n)
    ]


HIND_POINTS = ("hind_paw", "hock", "stifle")


def _percent(fraction: Any) -> str:
    """A 0..1 share as a whole percentage, or "not measured"."""
    return number(100 * fraction if isinstance(fraction, int | float) else None, 0, " %")


def vet_details(report: dict[str, Any]) -> None:
    """Per-stride values, paw strike and lift-off times and the quality figures, in an expander."""
    with st.expander("Details for vets: per stride, paw events, quality"):
        rows = _per_stride_rows(report)
        if rows:
            st.dataframe(rows, hide_index=True)
        else:
            st.caption("Per-stride values: not measured.")
        events = block(report, "metrics", "gait", "events")
        for limb, name in (("left_hind", "Left hind"), ("right_hind", "Right hind")):
            strikes = block(events, limb).get("strikes_s")
            lifts = block(events, limb).get("lift_offs_s")
            shown = (
                ", ".join(number(t, 2) for t in strikes) if isinstance(strikes, list) and strikes else "not measured"
            )
            st.text(f"{name} paw strikes (s): {shown or 'not measured'}")
            if isinstance(lifts, list) and lifts:
                st.text(f"{name} lift-offs (s): {', '.join(number(t, 2) for t in lifts)}")
        q = block(report, "quality")
        swaps = q.get("swaps_repaired")
        st.text(
            f"Dog found in {_percent(q.get('dog_frames_share'))} of frames; "
            f"dog width {_percent(q.get('dog_size_share'))} of the frame; "
            f"left/right swaps repaired: {swaps if isinstance(swaps, int) else 'not counted'}"
        )
        seen = block(q, "usable_fraction")
        hind = [f"{k.replace('_', ' ')} {_percent(v)}" for k, v in seen.items() if k.split("_", 1)[-1] in HIND_POINTS]
        if hind:
            st.text("Hind keypoints seen confidently: " + ", ".join(hind))
        labels = block(report, "metrics", "hind_labels")
        per_stride = labels.get("changes_per_stride")
        if isinstance(per_stride, int | float):
            follow = labels.get("follow_legs")
            verdict = (
                "they follow the legs"
                if follow is True
                else "they name places, not legs"
                if follow is False
                else "too little to judge"
            )
            st.text(
                f"Hind paw labels changed order {number(per_stride, 1)} times a stride "
                f"(about 2 when they follow the legs): {verdict}"
            )
