"""Upload: a phone video in, the analysis started in the background, and its progress until it is done."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from vision.dashboard import analysis_jobs
from vision.dashboard.progress import analyses, done_notices
from vision.dashboard.state import clip_label, link_to_page, page_start
from vision.errors import HindsightInputError, OutOfSpaceError
from vision.storage import Store
from vision.storage.models import User

GUIDANCE = """
**How to film**
- Side-on, with the phone held level at the dog's hip height, 2–4 m away; the whole dog in frame, filling at
  least a third of its width (a smaller dog is found and tracked less reliably).
- Walk the dog on a loose lead past the camera, **at least 6 strides each way**, on flat ground.
- Film in daylight or a brightly lit room: in dim light the phone exposes longer and the moving legs blur.
- Same place, same lead side and similar speed each week.
- For tremor: also film the dog **standing still** at **60 fps or slow motion** (120/240 fps).
"""


def _hand_in(user: User, store: Store, dog_id: int, upload: Any, recorded_on: dt.date | None) -> None:
    """Store the upload and queue its analysis, saying what happened (also when it is already there)."""
    try:
        submission = analysis_jobs.submit(store, user, dog_id, upload, upload.name, recorded_on)
    except OutOfSpaceError:
        st.error("The server is out of space: nothing was stored. Your file stays selected; try again later.")
        return
    except HindsightInputError as exc:
        st.error(f"This file cannot be used: {exc}")
        return
    clip = store.get_clip(user, submission.clip_id)
    if submission.already_there:
        st.warning(f"This video is already uploaded: {clip_label(clip)}.")
        link_to_page("clip", "Open it", clip=clip.id, dog=dog_id)
        return
    st.session_state["chosen_clip"] = clip.id
    job = submission.job
    place = f" It is number {job.queue_position} in the queue." if job.queue_position else ""
    recorded = f"recorded {clip.recorded_on:%d %b %Y}"
    if clip.recorded_on_known is False:
        recorded = "the video holds no recording date: it is dated by its upload; set the date on the Clip page"
    st.success(
        f"Uploaded ({recorded}). Analysis started.{place} You can leave this page; "
        "a notice with a link to the result appears here when it is done."
    )


def page() -> None:
    """Upload a video (a duplicate is recognised by its content), start its analysis and follow it."""
    started = page_start("Upload this week's walk", "Add a dog first (Dogs page).")
    if started is None:
        return
    user, store, dog = started
    left, right = st.columns([3, 2])
    with right:
        st.markdown(GUIDANCE)
    with left:
        upload = st.file_uploader("Phone video", type=["mp4", "mov", "m4v", "webm"], accept_multiple_files=False)
        use_meta = st.checkbox("Use the recording date stored in the video", value=True)
        date = st.date_input("Recording date", value=dt.date.today(), disabled=use_meta)
        if upload is not None and st.button("Upload and analyse", type="primary"):
            _hand_in(user, store, dog.id, upload, None if use_meta else date)
    done_notices(user, dog.id)
    st.subheader("Analyses")
    analyses(user, dog.id)
