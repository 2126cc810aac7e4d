"""Clip: the annotated video, metric cards in plain words, per-stride plots and the quality verdict."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from vision.dashboard import analysis_jobs
from vision.dashboard.cards import PHASE_SCALE, block, metric_cards, muscle_card, quality_facts
from vision.dashboard.details import glossary, vet_details
from vision.dashboard.progress import analyses
from vision.dashboard.state import LOG, damaged_line, page_start, pick
from vision.errors import DamagedFileError, HindsightInputError
from vision.storage import Store
from vision.storage.models import Clip, User


def _date_editor(store: Store, user: User, clip: Clip) -> None:
    """Let the owner correct a clip's recording date."""
    title = f"Recorded {clip.recorded_on:%d %b %Y} — change"
    if clip.recorded_on_known is False:
        title = "Recording date unknown (dated by its upload) — set it"
    with st.popover(title):
        new_date = st.date_input("Recording date", value=clip.recorded_on, key=f"date_{clip.id}")
        if st.button("Save date", key=f"save_date_{clip.id}") and isinstance(new_date, dt.date):
            store.update_clip(user, clip.id, recorded_on=new_date)
            st.rerun()


def _overlay(store: Store, clip: Clip) -> None:
    """The annotated video, checked against its digest; a damaged one is one line."""
    if not clip.overlay_sha256:
        st.info("The annotated video is not available for this clip.")
        return
    try:
        st.video(str(store.blobs.verified_path(clip.overlay_sha256, "overlay")))
    except DamagedFileError as exc:
        LOG.warning("overlay of clip %s damaged (%s)", clip.id, exc.reason)
        st.warning(damaged_line(exc))


def _result(store: Store, user: User, clip: Clip) -> None:
    try:
        report = store.report(clip)
    except DamagedFileError as exc:
        LOG.warning("report of clip %s damaged (%s)", clip.id, exc.reason)
        st.error(damaged_line(exc))
        return
    except Exception:  # noqa: BLE001 - an unreadable stored report is named, never shown as a path
        LOG.exception("report of clip %s unreadable", clip.id)
        report = None
    if report is None:
        st.error("The stored report for this clip is damaged or missing — re-analyse it.")
        return
    if clip.pose_source == "rendered":
        st.caption("Demo clip: rendered by Hindsight, analysed from the keypoints it was drawn from.")
    left, right = st.columns([3, 2])
    with left:
        _overlay(store, clip)
    with right:
        quality_facts(report)
    metric_cards(report)
    muscle_card(report)
    if block(report, "quality").get("usable"):
        from vision.dashboard.figures import per_stride_chart, phase_chart

        a, b = st.columns(2)
        if block(report, "metrics", "symmetry", "weakness_pct").get("per_stride"):
            a.plotly_chart(per_stride_chart(report))
        if block(report, "metrics", "bunny_hop").get("per_stride_phase"):
            b.plotly_chart(phase_chart(report))
            b.caption(PHASE_SCALE)
    glossary()
    if user.role == "vet":
        vet_details(report)
    if clip.report_sha256:
        st.download_button(
            "Download report (JSON)",
            data=store.blobs.read_bytes(clip.report_sha256, "report"),
            file_name=f"hindsight-{clip.recorded_on}-{clip.id}.json",
            mime="application/json",
        )


def _reanalyse(store: Store, user: User, clip: Clip) -> None:
    """The owner's button that queues a new analysis; the shown result stays until the new one is done."""
    if not st.button("Re-analyse this clip", key=f"reanalyse_{clip.id}", help="Analyse the video again."):
        return
    try:
        job = analysis_jobs.reanalyse(store, user, clip.id)
    except HindsightInputError as exc:  # a full queue, or the queue server down
        st.error(f"The clip cannot be queued: {exc}")
        return
    place = f" It is number {job.queue_position} in the queue." if job.queue_position else ""
    st.session_state[f"reanalysed_{clip.id}"] = f"Re-analysis queued.{place} The result below stays until it is done."
    st.rerun()


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
    owner = dog.owner_id == user.id
    if notice := st.session_state.pop(f"reanalysed_{clip.id}", None):
        st.success(notice)
    if owner:
        _date_editor(store, user, clip)
    if clip.status != "done":
        analyses(user, dog.id)
        if not clip.report_sha256:
            return
        st.caption("The result of the previous analysis, shown until a new one is done:")
    elif owner:
        _reanalyse(store, user, clip)
    _result(store, user, clip)
