"""Clip: the annotated video, metric cards in plain words, per-stride plots and the quality verdict."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from vision.dashboard.cards import PHASE_SCALE, block, metric_cards, muscle_card, quality_facts
from vision.dashboard.details import glossary, vet_details
from vision.dashboard.progress import analyses
from vision.dashboard.state import LOG, page_start, pick
from vision.storage import Store
from vision.storage.models import Clip, User


def _date_editor(store: Store, user: User, clip: Clip) -> None:
    """Let the owner correct a clip's recording date."""
    with st.popover(f"Recorded {clip.recorded_on:%d %b %Y} — change"):
        new_date = st.date_input("Recording date", value=clip.recorded_on, key=f"date_{clip.id}")
        if st.button("Save date", key=f"save_date_{clip.id}") and isinstance(new_date, dt.date):
            store.update_clip(user, clip.id, recorded_on=new_date)
            st.rerun()


def _result(store: Store, user: User, clip: Clip) -> None:
    try:
        report = store.report(clip)
    except Exception:  # noqa: BLE001 - a damaged stored report is named, never shown as a path
        LOG.exception("report of clip %s unreadable", clip.id)
        report = None
    if report is None:
        st.error("The stored report for this clip is damaged or missing: analyse the clip again.")
        return
    if clip.pose_source == "rendered":
        st.caption("Demo clip: rendered by Hindsight, analysed from the keypoints it was drawn from.")
    left, right = st.columns([3, 2])
    with left:
        if clip.overlay_sha256 and store.blobs.exists(clip.overlay_sha256):
            st.video(str(store.blobs.path(clip.overlay_sha256)))
        else:
            st.info("The annotated video is not available for this clip.")
    with right:
        quality_facts(report)
    metric_cards(report)
    muscle_card(report)
    if block(report, "quality").get("usable"):
        from vision.dashboard.figures import per_stride_chart, phase_chart

        a, b = st.columns(2)
        a.plotly_chart(per_stride_chart(report))
        b.plotly_chart(phase_chart(report))
        b.caption(PHASE_SCALE)
    glossary()
    if user.role == "vet":
        vet_details(report)
    if clip.report_sha256:
        st.download_button(
            "Download report (JSON)",
            data=store.blobs.read_bytes(clip.report_sha256),
            file_name=f"hindsight-{clip.recorded_on}-{clip.id}.json",
            mime="application/json",
        )


def page() -> None:
    """One clip, chosen in a picker that keeps its choice and is mirrored in the URL (``?clip=ID``)."""
    started = page_start("Clip", "No dog selected.")
    if started is None:
        return
    user, store, dog = started
    clips = store.clips_for_dog(user, dog.id)
    if not clips:
        st.info("No clips yet.")
        return
    clip = pick("Clip", clips, "clip", default=clips[-1])
    if user.role == "owner":
        _date_editor(store, user, clip)
    if clip.status != "done":
        analyses(user, dog.id)
        return
    _result(store, user, clip)
