"""The report shown in plain words: metric cards, quality facts and the comparison, read from stored reports.

Every value that may be missing (None, NaN, an absent block) is shown as "not measured", with the reason
where the report gives one. Nothing here computes science; it only words what the report says.
"""

from __future__ import annotations

import math
import re
from typing import Any

import streamlit as st

from vision.compare import STATUS_WORDS, verdict_lines

NOT_MEASURED = "not measured"
PHASE_SCALE = "Hind phase: 0.5 = the hind legs alternate normally; near 0 (or 1) = both move together (bunny hopping)."
FLAG_HELP = (
    "⚑ = flagged for the vet: this clip was compared with the dog's earlier baseline clip and at least one measure "
    "got worse by more than the two clips' own stride-to-stride noise."
)
NOISE_HELP = (
    "'Within measurement noise' means the difference between the legs is smaller than the clip's own "
    "stride-to-stride variation, so no side can be called weaker."
)
EVIDENCE_HELP = (
    "Evidence compares the stride-to-stride spread with the size of the effect: strong when the spread is under "
    "half the effect, moderate up to 1.2 times, weak above."
)
VIEW_WORDS = {
    "lateral": "from the side",
    "oblique": "at an angle",
    "rear": "from behind",
    "front": "from the front",
    "unknown": "from an angle that could not be told",
}
DIRECTION_WORDS = {
    "left_to_right": "walking left to right",
    "right_to_left": "walking right to left",
    "both": "walking both ways",
    "toward": "walking toward the camera",
    "away": "walking away from the camera",
    "unknown": "walking direction not told",
}
CAMERA_WORDS = {"still": "held still", "moving": "moving", "unknown": "not checked"}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&:])")


def escape_markdown(text: Any) -> str:
    """User text made inert for ``st.markdown``: no links, images, emphasis or HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text if text is not None else ""))


def is_number(value: Any) -> bool:
    """True for a finite int or float (not bool, None or NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number(value: Any, digits: int = 1, unit: str = "") -> str:
    """``value`` to ``digits`` decimals with its unit, or "not measured"."""
    if not is_number(value):
        return NOT_MEASURED
    return f"{value:.{digits}f}{unit}"


def measure(value: Any, *, signed: bool = False) -> str:
    """A measure to sensible precision (1 decimal from 10, 2 from 1, else 2 significant figures), or "—"."""
    if not is_number(value):
        return "—"
    size = abs(float(value))
    digits = 1 if size >= 10 else 2 if size >= 1 or size == 0 else min(3, max(2, 1 - math.floor(math.log10(size))))
    shown = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return shown if float(shown) != 0 else f"{0:.{digits}f}"


def interval(ci: Any, digits: int = 1, unit: str = "", *, magnitude: bool = False) -> str | None:
    """A 95 % interval written low to high ("3.1 to 7.4 %"), or None when absent.

    With ``magnitude`` the interval of a signed value is shown as the interval of its size
    (it starts at 0 when the signed interval includes zero).
    """
    if not isinstance(ci, list | tuple) or len(ci) != 2 or not all(is_number(v) for v in ci):
        return None
    lo, hi = sorted(float(v) for v in ci)
    if magnitude:
        lo, hi = (0.0, max(-lo, hi)) if lo < 0 < hi else tuple(sorted((abs(lo), abs(hi))))
    return f"{lo:.{digits}f} to {hi:.{digits}f}{unit}"


def texts(value: Any) -> list[str]:
    """The strings of a list of sentences (anything else reads as no sentences)."""
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def sentence(value: Any) -> str | None:
    """A sentence, or None when the value is not a non-empty string."""
    return value if isinstance(value, str) and value else None


def block(report: dict[str, Any] | None, *path: str) -> dict[str, Any]:
    """The nested block at ``path`` of a report, or an empty dict when any part is missing."""
    node: Any = report or {}
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def words(table: dict[str, str], code: Any) -> str:
    """A code in words (``table``), else the code with underscores as spaces, else "not known"."""
    if not code:
        return "not known"
    return table.get(str(code), str(code).replace("_", " "))


def quality_facts(report: dict[str, Any]) -> None:
    """View, direction, strides, frame rate and camera steadiness, with the report's notes."""
    q = block(report, "quality")
    strides = q.get("hind_strides")
    st.write(
        f"**Filmed** {words(VIEW_WORDS, q.get('view'))}, {words(DIRECTION_WORDS, q.get('direction'))} · "
        f"**hind strides:** {strides if isinstance(strides, int) else NOT_MEASURED}"
    )
    camera = words(CAMERA_WORDS, q.get("camera_motion"))
    st.write(f"**Frame rate:** {number(q.get('fps'), 0, ' fps')} · **camera:** {camera}")
    for note in texts(q.get("notes")):
        st.caption(note)


def _asymmetry_card(column: Any, sym: dict[str, Any]) -> None:
    weakness = block(sym, "weakness_pct")
    value = sym.get("hind_asymmetry_pct")
    help_text = "Difference between the hind legs in stance time and stride reach. " + NOISE_HELP + " " + EVIDENCE_HELP
    if sym.get("within_noise") is True:
        column.metric("Is one hind leg weaker?", "within noise", help=help_text)
        column.write("No side is clearly weaker: the difference is within measurement noise.")
        return
    if sym.get("legs_told_apart") is False:
        column.metric("Is one hind leg weaker?", NOT_MEASURED, help=help_text)
        column.write("The two hind legs were not told apart in this clip.")
        return
    column.metric("Is one hind leg weaker?", number(value, 1, " %"), help=help_text)
    side = sym.get("weaker_side")
    ci = interval(weakness.get("ci95"), 1, " %", magnitude=True)
    evidence = weakness.get("evidence")
    text = f"**{side.capitalize()} hind** weaker" if side in ("left", "right") else "No side clearly weaker"
    if ci:
        text += f" (95 % interval {ci})"
    if evidence in ("strong", "moderate", "weak"):
        text += f", {evidence} evidence"
    column.write(text)
    if not is_number(value) and sentence(sym.get("reason")):
        column.caption(str(sym["reason"]))


def _phase_card(column: Any, bunny: dict[str, Any], labels_apart: bool = True) -> None:
    """The hind-coupling card; with ``labels_apart`` False (``metrics.hind_labels``) the summary says why."""
    phase = bunny.get("hind_phase")
    column.metric(
        "Do the hind legs move together?",
        f"phase {phase:.2f}" if is_number(phase) else NOT_MEASURED,
        help=PHASE_SCALE,
    )
    flag = bunny.get("flag")
    if flag is True:
        column.write("**Bunny hopping seen**")
    else:
        column.write(
            "Alternating normally"
            if flag is False
            else "Not judged (the hind legs were not told apart)"
            if not labels_apart
            else "Not judged (not a walk or trot)"
        )
    if sentence(bunny.get("note")) and labels_apart:
        column.caption(str(bunny["note"]))


def _wobble_card(column: Any, wobble: dict[str, Any], summary: Any = None) -> None:
    tremor_hz = wobble.get("tremor_hz")
    column.metric(
        "Wobble",
        f"tremor {tremor_hz:.1f} Hz" if is_number(tremor_hz) else "no tremor seen",
        help="Stride-to-stride variability (sway, ataxia) and hind-limb tremor. Normal dogs vary 20-28 % in stride "
        "time on a walkway, so a change against the dog's own earlier clips matters more than the number.",
    )
    cv = block(wobble, "ataxia", "stride_time_cv_pct").get("value")
    column.write(f"Stride-time variability {number(cv, 0, ' %')}")
    note = sentence(block(wobble, "tremor").get("note"))
    if note and note not in texts(summary):
        st.caption(note)


def metric_cards(report: dict[str, Any]) -> None:
    """The clip's headline cards, or why it could not be scored and how to film it next time."""
    q = block(report, "quality")
    if not q.get("usable"):
        st.error("This clip could not be scored reliably.")
        for reason in texts(q.get("reasons")):
            st.write(f"- {reason}")
        if texts(q.get("advice")):
            st.info("**How to fix it:** " + " ".join(texts(q.get("advice"))))
        return
    c1, c2, c3 = st.columns(3)
    _asymmetry_card(c1, block(report, "metrics", "symmetry"))
    labels_apart = block(report, "metrics", "hind_labels").get("follow_legs") is not False
    _phase_card(c2, block(report, "metrics", "bunny_hop"), labels_apart)
    _wobble_card(c3, block(report, "metrics", "wobble"), (report or {}).get("summary"))
    for line in texts((report or {}).get("summary")):
        st.write(line)


def muscle_card(report: dict[str, Any]) -> None:
    """Thigh muscle indices with their repeatability, or why they were not measured."""
    muscle = block(report, "metrics", "muscle")
    if not muscle.get("available"):
        reason = sentence(muscle.get("reason"))
        st.caption(f"Thigh muscle: {NOT_MEASURED}" + (f" ({reason})." if reason else "."))
        return
    index = block(muscle, "thigh_width_index").get("value")
    cv = block(muscle, "repeatability").get("thigh_cv_pct")
    c1, c2 = st.columns(2)
    c1.metric(
        "Thigh muscle index",
        number(index, 3),
        help="Thigh depth behind the femur over body length (side-on), or thigh width over leg length "
        "(from behind), at the same stride phase each time. Compare it with the dog's own earlier weeks.",
    )
    noisy = block(muscle, "repeatability").get("too_noisy")
    c1.caption(f"Stride-to-stride variation {number(cv, 1, ' %')}" + (" — too noisy to use" if noisy else ""))
    asym = muscle.get("thigh_asymmetry_pct")
    if is_number(asym):
        side = muscle.get("weaker_side")
        c2.metric("Thigh asymmetry", number(asym, 1, " %"))
        thinner = f"**{side.capitalize()}** thigh thinner" if side in ("left", "right") else None
        c2.write(thinner or "No side thinner beyond noise")
    elif sentence(muscle.get("note")):
        c2.caption(str(muscle["note"]))


def comparison_rows(comparison: dict[str, Any]) -> list[dict[str, str]]:
    """The comparison table in words: values to sensible decimals, intervals low to high, plain status."""
    rows = []
    comparable = comparison.get("comparable", True)
    for m in (comparison.get("metrics") or {}).values():
        status = m.get("status")
        shown = STATUS_WORDS.get(str(status), "can't tell")
        if status == "uncertain" and (not comparable or m.get("reason")):
            shown = "not compared"
        rows.append(
            {
                "measure": str(m.get("label", "")),
                "before": measure(m.get("before")),
                "after": measure(m.get("after")),
                "change": measure(m.get("change"), signed=True),
                "95% interval": " to ".join(measure(v, signed=True) for v in sorted(m["ci95"]))
                if interval(m.get("ci95"))
                else "—",
                "result": shown,
            }
        )
    return rows


def comparison_verdict(comparison: dict[str, Any], before_name: str, after_name: str) -> None:
    """The comparison's verdict: red for what got worse, amber for what could not be compared, green otherwise."""
    lines = verdict_lines(comparison, before_name, after_name)
    comparable = comparison.get("comparable", bool(comparison.get("before_usable") and comparison.get("after_usable")))
    for line in lines:
        if line.startswith("Worse beyond"):
            st.error(line)
        elif not comparable and line is lines[0] or "could not be scored" in line or "not a sign of no change" in line:
            st.warning(line)
        elif line.startswith("No worsening"):
            st.success(line)
        else:
            st.caption(line)
    for note in texts(comparison.get("notes")):
        st.caption(note)
