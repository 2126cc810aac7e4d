"""Vet review: the queue of flagged clips, both clips and the changes, notes and status, and the PDF."""

from __future__ import annotations

import streamlit as st

from vision.dashboard.cards import escape_markdown
from vision.dashboard.comparison import comparison_view
from vision.dashboard.state import current_user, get_store, history, sidebar
from vision.storage.models import Clip, Review, User

STATUS_LABELS = {
    "pending": "waiting for review",
    "reviewed": "reviewed",
    "needs_visit": "needs a visit",
    "no_concern": "no concern",
}


def _pdf(user: User, review: Review, comparison: dict, notes: str, status: str) -> bytes:
    """The vet PDF of this review with the notes and status as they are on screen."""
    from vision.pdf import vet_report_pdf

    store = get_store()
    after = store.get_clip(user, review.clip_id)
    before = store.get_clip(user, review.baseline_clip_id)
    dog = store.get_dog(user, after.dog_id)
    before_report, after_report = store.report(before), store.report(after)
    return vet_report_pdf(
        dog={"name": dog.name, "breed": dog.breed, "birth_date": dog.birth_date, "weight_kg": dog.weight_kg},
        before={"date": before.recorded_on, "report": before_report, "still": _still(before, before_report)},
        after={"date": after.recorded_on, "report": after_report, "still": _still(after, after_report)},
        comparison=comparison,
        history=history(store, store.clips_for_dog(user, dog.id)),
        vet_name=user.name,
        notes=notes,
        status=STATUS_LABELS.get(status, status),
    )


def _still(clip: Clip, report: dict | None) -> tuple[bytes, str] | None:
    """The clip's annotated frame at mid-stance for the PDF; None when there is no overlay or stance to show."""
    from vision.errors import DamagedFileError, HindsightInputError
    from vision.stills import mid_stance_png

    if not clip.overlay_sha256:
        return None
    try:
        return mid_stance_png(get_store().blobs.verified_path(clip.overlay_sha256, "overlay"), report)
    except (DamagedFileError, HindsightInputError):
        return None  # the PDF goes out without the still; the Clip page names the damage


def _cached_pdf(user: User, review: Review, comparison: dict, notes: str, status: str) -> bytes:
    """:func:`_pdf`, built once per review, notes and status in this session."""
    cache = st.session_state.setdefault("_pdf_cache", {})
    key = (review.id, review.comparison_sha256, notes, status)
    if key not in cache:
        cache.clear()
        cache[key] = _pdf(user, review, comparison, notes, status)
    return cache[key]


def _review(user: User, review: Review, expanded: bool) -> None:
    store = get_store()
    after = store.get_clip(user, review.clip_id)
    before = store.get_clip(user, review.baseline_clip_id)
    dog = store.get_dog(user, after.dog_id)
    title = (
        f"⚑ {escape_markdown(dog.name)}: {before.recorded_on:%d %b} → {after.recorded_on:%d %b} "
        f"({STATUS_LABELS.get(review.status, review.status)})"
    )
    with st.expander(title, expanded=expanded):
        comparison = store.comparison_of(review)
        comparison_view(store, before, after, comparison)
        notes = st.text_area("Notes", value=review.notes, key=f"notes_{review.id}", max_chars=5000)
        statuses = list(STATUS_LABELS)
        status = st.radio(
            "Status",
            statuses,
            index=statuses.index(review.status) if review.status in statuses else 0,
            horizontal=True,
            format_func=lambda s: STATUS_LABELS[s],
            key=f"status_{review.id}",
        )
        left, right = st.columns(2)
        if left.button("Save", key=f"save_{review.id}", type="primary"):
            store.update_review(user, review.id, status, notes)
            st.session_state["review_saved"] = f"Saved: {dog.name}, {STATUS_LABELS[status]}."
            st.rerun()
        right.download_button(
            "PDF report",
            data=_cached_pdf(user, review, comparison, notes, status),
            file_name=f"hindsight-{after.recorded_on}-{review.id}.pdf",
            mime="application/pdf",
            key=f"pdf_{review.id}",
            help="The PDF holds the notes and status shown here, saved or not.",
        )


def page() -> None:
    """A vet's queue of flagged clips (owners are told it is for vets)."""
    user = current_user()
    if user is None:
        raise PermissionError("not logged in")
    sidebar(user)
    st.title("Vet review")
    if user.role != "vet":
        st.info("The review queue is for vets. Share your dog with your vet on the Dogs page.")
        return
    saved = st.session_state.pop("review_saved", None)
    if saved:
        st.success(saved)
    show_all = st.toggle("Show reviewed too", value=False)
    queue = get_store().review_queue(user, include_done=show_all)
    if not queue:
        st.success("Nothing waiting for review.")
        return
    for review in queue:
        _review(user, review, expanded=len(queue) == 1 or review.status == "pending")
