"""Dogs: add a dog, see its weekly timeline (flags explained), share it with a vet by invitation and stop sharing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from vision.dashboard.cards import FLAG_HELP, NOT_MEASURED, block, escape_markdown, number
from vision.dashboard.progress import analyses, done_notices
from vision.dashboard.state import STATUS_WORDS, current_user, get_store, history, invitation_link, sidebar
from vision.storage.models import Clip, Dog, User


def _add_dog_form(user: User, expanded: bool) -> None:
    store = get_store()
    with st.expander("Add a dog", expanded=expanded), st.form("new_dog"):
        name = st.text_input("Name", max_chars=120)
        breed = st.text_input("Breed", max_chars=120)
        birth = st.date_input("Date of birth", value=None, min_value=dt.date(1990, 1, 1))
        weight = st.number_input("Weight (kg)", min_value=0.0, max_value=150.0, value=None)
        notes = st.text_area("Notes (surgery, diagnosis, medication)", max_chars=2000)
        if st.form_submit_button("Add dog"):
            try:
                new = store.create_dog(user, name, breed, birth, weight, notes)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state["pick_dog"] = new.id
                st.rerun()


def _timeline_row(clip: Clip, flagged: set[int], report: dict[str, Any] | None = None) -> dict[str, str]:
    """One row of the dog's timeline; ``report`` (the clip's, when read) tells "within noise" from "not measured"."""
    apart = block(report, "metrics", "symmetry").get("legs_told_apart") is not False
    side = {"left": "left hind", "right": "right hind"}.get(clip.weaker_side or "", "none clearly")
    scored = clip.usable

    def yes_no(flag: bool | None) -> str:
        return "—" if flag is None or not scored else ("yes" if flag else "no")

    return {
        "recorded": f"{clip.recorded_on:%d %b %Y}",
        "file": clip.original_name or "",
        "state": STATUS_WORDS.get(clip.status, clip.status),
        "scored": "—" if scored is None else ("yes" if scored else "no (see the clip)"),
        "asymmetry": number(clip.hind_asymmetry_pct, 1, " %")
        if clip.hind_asymmetry_pct is not None
        else ("—" if not scored else "within noise" if apart else "not measured (legs not told apart)"),
        "weaker side": side if scored and apart else "—",
        "bunny hop": yes_no(clip.bunny_hop_flag),
        "wobble": yes_no(clip.wobble_flag),
        "flagged for vet": "⚑" if clip.id in flagged else "",
    }


def _timeline(user: User, dog: Dog) -> None:
    from vision.dashboard.figures import thigh_index_chart, trend_chart

    store = get_store()
    clips = store.clips_for_dog(user, dog.id)
    if not clips:
        st.info("No clips yet: upload this week's walk.")
        return
    flagged = set(store.flagged_clips(user, dog.id))
    past = history(store, clips)
    st.plotly_chart(trend_chart(past, [c.recorded_on for c in clips if c.id in flagged]))
    if any(block(r, "metrics", "muscle").get("available") for _, r in past):
        st.plotly_chart(thigh_index_chart(past))
    reports = dict(zip([c.id for c in clips if c.status == "done"], [r for _, r in past], strict=True))
    st.dataframe([_timeline_row(c, flagged, reports.get(c.id)) for c in reversed(clips)], hide_index=True)
    if flagged:
        st.caption(FLAG_HELP)


SHARE_DONE = (
    "Invitation made. If a vet account has this e-mail, the dog is in its list now; either way, send your vet "
    "this link (one use, valid 14 days; it is shown only now):"
)


def _share_form(user: User, dog: Dog) -> None:
    """Invite a vet by e-mail (the same answer whether or not the e-mail has an account) and list the shares."""
    store = get_store()
    with st.form("share", clear_on_submit=True):
        st.write("Share this dog with your vet or physiotherapist")
        vet_email = st.text_input("Vet's e-mail", max_chars=254, key="share_email")
        if st.form_submit_button("Share"):
            try:
                token = store.share_dog(user, dog.id, vet_email)
            except (ValueError, PermissionError) as exc:
                st.error(str(exc))
            else:
                st.session_state["invite_link"] = (dog.id, vet_email.strip().lower(), invitation_link(token))
    made = st.session_state.get("invite_link")
    if made and made[0] == dog.id:
        st.success(SHARE_DONE)
        st.text(f"For {made[1]}:")
        st.code(made[2], language=None)
    entries = store.shares_of(user, dog.id)
    if not entries:
        return
    st.write("Shared with")
    for entry in entries:
        left, right = st.columns([4, 1])
        until = f"{entry.valid_until:%d %b %Y}" if entry.valid_until else ""
        state = "shared" if entry.state == "shared" else f"invited, link valid until {until}"
        left.text(f"{entry.email} — {state}")
        if right.button("Stop sharing", key=f"unshare_{dog.id}_{entry.email}"):
            store.unshare_dog(user, dog.id, entry.email)
            st.session_state.pop("invite_link", None)
            st.rerun()


def page() -> None:
    """Create and pick a dog; its timeline, analyses in progress and sharing."""
    user = current_user()
    if user is None:
        raise PermissionError("not logged in")
    dog = sidebar(user)
    st.title("Dogs")
    if user.role == "owner":
        _add_dog_form(user, expanded=dog is None)
    if dog is None:
        st.info("No dogs yet." if user.role == "owner" else "No dogs have been shared with you yet.")
        return
    st.subheader(escape_markdown(dog.name))
    born = f"{dog.birth_date:%d %b %Y}" if dog.birth_date else NOT_MEASURED.replace("measured", "given")
    weight = number(dog.weight_kg, 1, " kg") if dog.weight_kg else "weight not given"
    st.text(f"{dog.breed or 'Breed not given'} · born {born} · {weight}")
    if dog.notes:
        st.text(dog.notes)
    done_notices(user, dog.id)
    _timeline(user, dog)
    analyses(user, dog.id)
    if user.role == "owner":
        _share_form(user, dog)
