"""Compare: two clips of the same dog, the changes with their intervals, side by side, and the weekly trend."""

from __future__ import annotations

import streamlit as st

from vision.dashboard.cards import FLAG_HELP
from vision.dashboard.comparison import comparison_view
from vision.dashboard.state import damaged_line, history, page_start, pick
from vision.errors import DamagedFileError


def page() -> None:
    """Pick a baseline and a later clip (kept in the URL as ``?before=ID&after=ID``) and compare them."""
    started = page_start("Compare", "No dog selected.")
    if started is None:
        return
    user, store, dog = started
    clips = [c for c in store.clips_for_dog(user, dog.id) if c.status == "done"]
    if len(clips) < 2:
        st.info("Two analysed clips are needed to compare.")
        return
    latest = clips[-1]
    base = store.baseline_for(latest) or clips[-2]
    a, b = st.columns(2)
    with a:
        before = pick("Before (baseline)", clips, "before", default=base)
    with b:
        after = pick("After", clips, "after", default=latest)
    if before.id == after.id:
        st.info("Pick two different clips to compare.")
        return
    try:
        comparison = store.compare(before, after)
    except DamagedFileError as exc:  # one clip's stored report: named; the trend below still shows
        st.warning(damaged_line(exc))
        comparison = {}
    if comparison is None:
        st.warning("The stored report of one of these clips is missing: analyse it again.")
        return
    if comparison:
        comparison_view(store, before, after, comparison)
    from vision.dashboard.figures import trend_chart

    flagged = set(store.flagged_clips(user, dog.id))
    st.plotly_chart(trend_chart(history(store, clips), [c.recorded_on for c in clips if c.id in flagged]))
    if flagged:
        st.caption(FLAG_HELP.replace("⚑", "A red cross on the chart"))
