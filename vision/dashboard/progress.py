"""The progress of a dog's analyses: running jobs, a notice when one is done, and retry for failed ones."""

from __future__ import annotations

import streamlit as st

from vision.dashboard import analysis_jobs
from vision.dashboard.state import clip_label, get_store, link_to_page
from vision.storage.models import User


@st.fragment(run_every=1.5)
def analyses(user: User, dog_id: int) -> None:
    """Progress bars of this dog's running analyses (refreshing itself), done notices and retry buttons."""
    store = get_store()
    analysis_jobs.refresh(store)
    clips = store.clips_for_dog(user, dog_id)
    active = [c for c in clips if c.status in ("queued", "running")]
    problems = [c for c in clips if c.status in ("failed", "interrupted", "uploaded")]
    key = f"active_jobs_{dog_id}"
    was_active = set(st.session_state.get(key, []))
    st.session_state[key] = [c.id for c in active]
    finished = was_active - {c.id for c in active}
    if finished:
        st.session_state.setdefault("finished_clips", []).extend(sorted(finished))
        st.rerun(scope="app")  # a job just ended: redraw the whole page with its result
    for c in active:
        job = analysis_jobs.state(store, user, c.id)
        if job.status == "queued":
            place = f" (number {job.queue_position} in the queue)" if job.queue_position else ""
            text = f"{clip_label(c)}: waiting for its turn{place}"
        else:
            text = f"{clip_label(c)}: {job.message or 'analysing'}"
            if job.eta_s:
                text += f" — about {max(1, round(job.eta_s / 60))} min to go"
        st.progress(min(1.0, max(0.0, job.progress)), text=text)
    for c in problems:
        cols = st.columns([4, 1])
        message = c.error or c.message or "not analysed yet"
        if message.startswith("internal error"):
            message = "the analysis failed unexpectedly (the detail is in the server log)"
        cols[0].warning(f"{clip_label(c)}: {message}")
        if cols[1].button("Retry" if c.status != "uploaded" else "Analyse", key=f"retry_{c.id}"):
            analysis_jobs.start(store, user, c.id)
            st.rerun()


def done_notices(user: User, dog_id: int) -> None:
    """A notice with a link to the result for each analysis that finished while the user was here."""
    finished = st.session_state.pop("finished_clips", [])
    if not finished:
        return
    store = get_store()
    for clip_id in finished:
        try:
            clip = store.get_clip(user, clip_id)
        except PermissionError:
            continue
        if clip.dog_id != dog_id or clip.status != "done":
            continue
        st.success(f"Analysis done: {clip_label(clip)}.")
        link_to_page("clip", "Open the result", clip=clip.id, dog=dog_id)
