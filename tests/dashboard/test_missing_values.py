"""Property test: the report's cards, quality facts and comparison render for reports with any optional
value missing (None, NaN or the key absent), with no exception and no "None" or "nan" shown."""

from __future__ import annotations

import copy
import math
import re
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

BLOCKS = ("quality", "metrics.symmetry", "metrics.bunny_hop", "metrics.wobble", "metrics.muscle", "metrics.gait")
SHOWN_CODES = re.compile(r"\bNone\b|\bnan\b|\bNaN\b|usable=|right_to_left|left_to_right")


@cache
def _base_report() -> dict[str, Any]:
    from vision.analysis import analyze_tracks
    from vision.synthetic import generate

    report = analyze_tracks(generate(seed=4, limp_side="left", limp_severity=0.5).tracks).report
    report["metrics"]["muscle"] = {
        "available": True,
        "view": "lateral",
        "thigh_width_index": {"value": 0.08, "ci95": [0.07, 0.09]},
        "thigh_asymmetry_pct": 6.0,
        "weaker_side": "left",
        "repeatability": {"thigh_cv_pct": 5.0, "too_noisy": False},
    }
    return report


def _paths(node: Any, prefix: tuple[str, ...] = (), depth: int = 0) -> list[tuple[str, ...]]:
    """Every key path under the report's blocks, down to three levels below a block."""
    out: list[tuple[str, ...]] = []
    if isinstance(node, dict) and depth <= 3:
        for key, value in node.items():
            out.append((*prefix, key))
            out += _paths(value, (*prefix, key), depth + 1)
    return out


@cache
def _optional_paths() -> list[tuple[str, ...]]:
    report = _base_report()
    found = []
    for block in BLOCKS:
        path = tuple(block.split("."))
        node: Any = report
        for key in path:
            node = node[key]
        found.append(path)
        found += [(*path, *rest) for rest in _paths(node)]
    return found


def _damaged(changes: list[tuple[int, str]]) -> dict[str, Any]:
    report = copy.deepcopy(_base_report())
    paths = _optional_paths()
    for index, how in changes:
        *parents, last = paths[index % len(paths)]
        node: Any = report
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or last not in node:
            continue
        if how == "absent":
            del node[last]
        else:
            node[last] = None if how == "None" else math.nan
    return report


def _render(report: dict, other: dict) -> None:
    import streamlit as st

    from vision.compare import compare_reports
    from vision.dashboard import cards

    cards.quality_facts(report)
    cards.metric_cards(report)
    cards.muscle_card(report)
    comparison = compare_reports(other, report)
    cards.comparison_verdict(comparison, "The clip of 01 Jan 2026", "The clip of 08 Jan 2026")
    st.dataframe(cards.comparison_rows(comparison))


def _shown_text(at: AppTest) -> list[str]:
    texts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success"):
        texts += [str(e.value) for e in at.get(kind)]
    texts += [f"{m.label} {m.value}" for m in at.metric]
    for frame in at.dataframe:
        texts += [str(v) for v in frame.value.to_numpy().ravel()]
    return texts


changes = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(["None", "nan", "absent"])), min_size=1, max_size=6
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=changes)
def test_cards_render_with_any_optional_value_missing(changes):
    report = _damaged(changes)
    at = AppTest.from_function(_render, args=(report, _base_report()), default_timeout=60).run()
    assert not at.exception, at.exception
    shown = _shown_text(at)
    assert shown
    assert not [t for t in shown if SHOWN_CODES.search(t)]


def test_a_scored_clip_with_no_asymmetry_says_not_measured():
    report = copy.deepcopy(_base_report())
    report["metrics"]["symmetry"].update(hind_asymmetry_pct=None, within_noise=False, weakness_pct={})
    report["metrics"]["bunny_hop"]["hind_phase"] = None
    at = AppTest.from_function(_render, args=(report, _base_report()), default_timeout=60).run()
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["Is one hind leg weaker?"] == "not measured"
    assert values["Do the hind legs move together?"] == "not measured"


def test_asymmetry_within_noise_is_not_a_headline_number():
    report = copy.deepcopy(_base_report())
    report["metrics"]["symmetry"].update(hind_asymmetry_pct=51.7, within_noise=True)
    at = AppTest.from_function(_render, args=(report, _base_report()), default_timeout=60).run()
    values = {m.label: m.value for m in at.metric}
    assert values["Is one hind leg weaker?"] == "within noise"
    assert not any("51.7" in t for t in _shown_text(at))


def test_hind_legs_not_told_apart_show_the_reason_not_a_side_or_a_phase():
    from tests.gait.test_identity import paws_by_place
    from vision.analysis import LABELS_NOTE, analyze_tracks
    from vision.synthetic import generate

    report = analyze_tracks(paws_by_place(generate(seed=4, limp_side="left", limp_severity=0.5).tracks, 1)).report
    at = AppTest.from_function(_render, args=(report, _base_report()), default_timeout=60).run()
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["Is one hind leg weaker?"] == "not measured"
    assert values["Do the hind legs move together?"] == "not measured"
    shown = _shown_text(at)
    assert "The two hind legs were not told apart in this clip." in shown
    assert "Not judged (the hind legs were not told apart)" in shown
    assert [t for t in shown if "told apart" in t and "tracker named" in t] == [LABELS_NOTE]  # explained once
    assert not any("Left hind" in t or "Alternating normally" in t for t in shown)


def test_the_timeline_says_not_measured_where_the_hind_legs_were_not_told_apart():
    import datetime as dt

    from vision.dashboard.pages.dogs import _timeline_row
    from vision.storage.models import Clip

    clip = Clip(
        id=1,
        recorded_on=dt.date(2026, 12, 1),
        original_name="walk.mp4",
        status="done",
        usable=True,
        hind_asymmetry_pct=None,
        weaker_side=None,
        bunny_hop_flag=None,
        wobble_flag=False,
    )
    apart = {"metrics": {"symmetry": {"within_noise": True}}}
    not_apart = {"metrics": {"symmetry": {"legs_told_apart": False}}}
    assert _timeline_row(clip, set(), apart)["asymmetry"] == "within noise"
    assert _timeline_row(clip, set(), not_apart)["asymmetry"] == "not measured (legs not told apart)"
    assert _timeline_row(clip, set(), not_apart)["weaker side"] == "—"
