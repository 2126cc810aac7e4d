"""Dashboard pages. Each page is a function; the data work is done by :mod:`vision` and the store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import streamlit as st

from vision.errors import HindsightInputError
from vision.storage import Store
from vision.storage.models import Clip, Dog, User

GUIDANCE = """
**How to film**
- Side-on, with the phone held level at the dog's hip height, 2–4 m away; the whole dog in frame, filling at
  least a third of its width (a smaller dog is found and tracked less reliably).
- Walk the dog on a loose lead past the camera, **at least 6 strides each way**, on flat ground.
- Film in daylight or a brightly lit room: in dim light the phone exposes longer and the moving legs blur.
- Same place, same lead side and similar speed each week.
- For tremor: also film the dog **standing still** at **60 fps or slow motion** (120/240 fps).
"""

EVIDENCE_HELP = (
    "Evidence compares the stride-to-stride spread with the size of the effect: strong when the spread is under "
    "half the effect, moderate up to 1.2 times, weak above."
)


@st.cache_resource
def get_store() -> Store:
    """One store per server process (data folder from HINDSIGHT_DATA_DIR)."""
    store = Store()
    store.refresh_stale()
    return store


def current_user() -> User | None:
    """The logged-in user, or None."""
    uid = st.session_state.get("user_id")
    return get_store().get_user(uid) if uid else None


# --- login -------------------------------------------------------------------------------------------


def login_page() -> None:
    """Log in, or create an account."""
    st.title("Hindsight")
    st.caption("Weekly hind-leg gait checks from a phone video — for owners, vets and physiotherapists.")
    store = get_store()
    with st.form("login"):
        email = st.text_input("E-mail", key="login_email")
        password = st.text_input("Password", type="password", key="login_password")
        if st.form_submit_button("Log in"):
            user = store.authenticate(email, password)
            if user is None:
                st.error("Wrong e-mail or password.")
            else:
                st.session_state["user_id"] = user.id
                st.rerun()
    with st.expander("Create an account"), st.form("signup"):
        name = st.text_input("Name")
        email2 = st.text_input("E-mail", key="signup_email")
        role = st.radio(
            "I am", ["owner", "vet"], format_func=lambda r: "a dog owner" if r == "owner" else "a vet or physio"
        )
        pw = st.text_input("Password (8 characters or more)", type="password", key="signup_password")
        if st.form_submit_button("Create account"):
            try:
                user = store.create_user(email2, name, role, pw)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state["user_id"] = user.id
                st.rerun()
    st.info("Demo: owner **owner@demo.hindsight** / `demo-owner`, vet **vet@demo.hindsight** / `demo-vet-1`.")


# --- shared bits ------------------------------------------------------------------------------------


def _sidebar(user: User) -> Dog | None:
    store = get_store()
    st.sidebar.write(f"Logged in as **{user.name}** ({user.role})")
    if st.sidebar.button("Log out"):
        st.session_state.clear()
        st.rerun()
    dogs = store.dogs_for(user)
    if not dogs:
        return None
    ids = [d.id for d in dogs]
    current = st.session_state.get("dog_id")
    index = ids.index(current) if current in ids else 0
    choice = st.sidebar.selectbox(
        "Dog", ids, index=index, format_func=lambda i: next(d.name for d in dogs if d.id == i)
    )
    st.session_state["dog_id"] = choice
    return next(d for d in dogs if d.id == choice)


def _page(title: str, no_dog: str = "No dog selected.") -> tuple[User, Store, Dog] | None:
    """Common page start: the logged-in user, the store, the sidebar's dog and the title.

    Returns None (after saying why) when no dog is available.
    """
    user = current_user()
    assert user is not None
    store = get_store()
    dog = _sidebar(user)
    st.title(title)
    if dog is None:
        st.info(no_dog)
        return None
    return user, store, dog


def _clip_label(c: Clip) -> str:
    return f"{c.recorded_on:%d %b %Y} — {c.status}" + (" (demo)" if c.pose_source == "rendered" else "")


def _history(store: Store, clips: list[Clip]) -> list[tuple[dt.date, dict[str, Any] | None]]:
    return [(c.recorded_on, store.report(c)) for c in clips if c.status == "done"]


@st.fragment(run_every=1.5)
def _jobs(user: User, dog_id: int) -> None:
    """Progress of this dog's analyses (refreshes itself while any is running)."""
    store = get_store()
    store.refresh_stale()
    clips = store.clips_for_dog(user, dog_id)
    active = [c for c in clips if c.status in ("queued", "running")]
    problems = [c for c in clips if c.status in ("failed", "interrupted", "uploaded")]
    key = f"active_jobs_{dog_id}"
    was_active = set(st.session_state.get(key, []))
    st.session_state[key] = [c.id for c in active]
    if was_active - {c.id for c in active}:
        st.rerun(scope="app")  # a job just ended: redraw the whole page with its result
    for c in active:
        st.progress(min(1.0, c.progress), text=f"{_clip_label(c)}: {c.message}")
    for c in problems:
        cols = st.columns([4, 1])
        msg = c.error or c.message or "not analysed yet"
        cols[0].warning(f"{_clip_label(c)}: {msg}")
        if cols[1].button("Retry" if c.status != "uploaded" else "Analyse", key=f"retry_{c.id}"):
            store.start_analysis(user, c.id)
            st.rerun()


# --- pages ------------------------------------------------------------------------------------------


def dogs_page() -> None:
    """Create and pick a dog; its timeline."""
    user = current_user()
    assert user is not None
    store = get_store()
    dog = _sidebar(user)
    st.title("Dogs")
    if user.role == "owner":
        with st.expander("Add a dog", expanded=dog is None), st.form("new_dog"):
            name = st.text_input("Name")
            breed = st.text_input("Breed")
            birth = st.date_input("Date of birth", value=None, min_value=dt.date(1990, 1, 1))
            weight = st.number_input("Weight (kg)", min_value=0.0, max_value=150.0, value=None)
            notes = st.text_area("Notes (surgery, diagnosis, medication)")
            if st.form_submit_button("Add dog"):
                try:
                    new = store.create_dog(user, name, breed, birth, weight, notes)
                except ValueError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["dog_id"] = new.id
                    st.rerun()
    if dog is None:
        st.info("No dogs yet." if user.role == "owner" else "No dogs have been shared with you yet.")
        return
    st.subheader(dog.name)
    st.write(f"{dog.breed or 'Breed not given'} · born {dog.birth_date or '—'} · {dog.weight_kg or '—'} kg")
    if dog.notes:
        st.caption(dog.notes)
    clips = store.clips_for_dog(user, dog.id)
    flagged = set(store.flagged_clips(user, dog.id))
    if clips:
        from vision.dashboard.figures import thigh_index_chart, trend_chart

        history = _history(store, clips)
        st.plotly_chart(trend_chart(history, [c.recorded_on for c in clips if c.id in flagged]))
        if any((r or {}).get("metrics", {}).get("muscle", {}).get("available") for _, r in history):
            st.plotly_chart(thigh_index_chart(history))
        rows = [
            {
                "date": c.recorded_on,
                "status": c.status,
                "scored": {True: "yes", False: "no (see clip)", None: "—"}[c.usable],
                "asymmetry %": c.hind_asymmetry_pct,
                "weaker side": c.weaker_side or "—",
                "bunny hop": {True: "yes", False: "no", None: "—"}[c.bunny_hop_flag],
                "wobble": {True: "yes", False: "no", None: "—"}[c.wobble_flag],
                "flagged for vet": "⚑" if c.id in flagged else "",
            }
            for c in reversed(clips)
        ]
        st.dataframe(rows, hide_index=True)
    else:
        st.info("No clips yet: upload this week's walk.")
    _jobs(user, dog.id)
    if user.role == "owner":
        with st.form("share"):
            st.write("Share this dog with your vet or physiotherapist")
            vet_email = st.text_input("Vet's e-mail")
            if st.form_submit_button("Share"):
                try:
                    store.share_dog(user, dog.id, vet_email)
                    st.success("Shared.")
                except (ValueError, PermissionError) as exc:
                    st.error(str(exc))
        vets = store.vets_of(dog.id)
        if vets:
            st.caption("Shared with: " + ", ".join(v.name for v in vets))


def upload_page() -> None:
    """Upload a phone video; the analysis runs in the background."""
    page = _page("Upload this week's walk", "Add a dog first (Dogs page).")
    if page is None:
        return
    user, store, dog = page
    left, right = st.columns([3, 2])
    with right:
        st.markdown(GUIDANCE)
    with left:
        up = st.file_uploader("Phone video", type=["mp4", "mov", "m4v", "webm"], accept_multiple_files=False)
        use_meta = st.checkbox("Use the recording date stored in the video", value=True)
        date = st.date_input("Recording date", value=dt.date.today(), disabled=use_meta)
        if up is not None and st.button("Upload and analyse", type="primary"):
            try:
                clip = store.add_clip(user, dog.id, up, up.name, None if use_meta else date)
            except HindsightInputError as exc:
                st.error(f"This file cannot be used: {exc}")
            except PermissionError as exc:
                st.error(str(exc))
            else:
                store.start_analysis(user, clip.id)
                st.session_state["clip_id"] = clip.id
                st.success(
                    f"Uploaded (recorded {clip.recorded_on:%d %b %Y}). Analysis started — you can leave this page."
                )
    st.subheader("Analyses")
    _jobs(user, dog.id)


def _metric_cards(report: dict[str, Any]) -> None:
    m = report["metrics"]
    q = report["quality"]
    if not q["usable"]:
        st.error("This clip could not be scored reliably.")
        for r in q["reasons"]:
            st.write(f"- {r}")
        st.info("**How to fix it:** " + " ".join(q["advice"]))
        return
    sym, bh, wb = m["symmetry"], m["bunny_hop"], m["wobble"]
    c1, c2, c3 = st.columns(3)
    w = sym.get("weakness_pct", {})
    ci = w.get("ci95")
    c1.metric(
        "Is one hind leg weaker?",
        f"{sym['hind_asymmetry_pct']:.1f}%",
        help="Difference between the hind legs in stance time and stride reach. " + EVIDENCE_HELP,
    )
    c1.write(
        f"**{(sym['weaker_side'] or 'no side').capitalize()}** weaker"
        + (f" — interval {abs(ci[0]):.1f}…{abs(ci[1]):.1f}%" if ci and ci[0] * ci[1] > 0 else " (within noise)")
        + f", {w.get('evidence', '?')} evidence"
    )
    phase = bh.get("hind_phase")
    c2.metric(
        "Do the hind legs move together?",
        "—" if phase is None else f"phase {phase:.2f}",
        help="0.5 = legs alternate normally; near 0 or 1 = both hind legs together (bunny hopping).",
    )
    c2.write({True: "**Bunny hopping seen**", False: "Alternating normally", None: "Not judged (gait)"}[bh.get("flag")])
    cv = wb["ataxia"]["stride_time_cv_pct"].get("value")
    c3.metric(
        "Wobble",
        "tremor " + (f"{wb['tremor_hz']:.1f} Hz" if wb.get("tremor_hz") else "none"),
        help="Stride-to-stride variability (sway/ataxia) and hind-limb tremor.",
    )
    c3.write(f"Stride-time variability {cv:.0f}%" if cv is not None else "Variability not measured")
    if wb["tremor"].get("note"):
        st.caption(wb["tremor"]["note"])
    for line in report.get("summary", []):
        st.write(line)


def _date_editor(store: Store, user: User, clip: Clip) -> None:
    """Let the owner correct a clip's recording date."""
    with st.popover(f"Recorded {clip.recorded_on:%d %b %Y} — change"):
        new_date = st.date_input("Recording date", value=clip.recorded_on, key=f"date_{clip.id}")
        if st.button("Save date", key=f"save_date_{clip.id}") and isinstance(new_date, dt.date):
            store.update_clip(user, clip.id, recorded_on=new_date)
            st.rerun()


def _muscle_card(report: dict[str, Any]) -> None:
    """Thigh muscle indices with their repeatability."""
    block = report["metrics"].get("muscle", {})
    if not block.get("available"):
        if block.get("reason"):
            st.caption(f"Muscle: not measured ({block['reason']}).")
        return
    idx = block["thigh_width_index"]
    rep = block.get("repeatability", {})
    c1, c2 = st.columns(2)
    c1.metric(
        "Thigh muscle index",
        f"{idx['value']:.3f}",
        help="Thigh depth behind the femur over body length (side-on), or thigh width over leg length "
        "(from behind), at the same stride phase each time. Compare it with the dog's own earlier weeks.",
    )
    c1.caption(
        f"Stride-to-stride CV {rep.get('thigh_cv_pct')}%" + (" — too noisy to use" if rep.get("too_noisy") else "")
    )
    if block.get("thigh_asymmetry_pct") is not None:
        side = block.get("weaker_side")
        c2.metric("Thigh asymmetry", f"{block['thigh_asymmetry_pct']:.1f}%")
        c2.write(f"**{side.capitalize()}** thigh thinner" if side else "No side thinner beyond noise")
    elif block.get("note"):
        c2.caption(block["note"])


def clip_page() -> None:
    """One clip: overlay video, metric cards, per-stride plots, quality verdict."""
    page = _page("Clip", "No dog selected.")
    if page is None:
        return
    user, store, dog = page
    clips = [c for c in store.clips_for_dog(user, dog.id)]
    if not clips:
        st.info("No clips yet.")
        return
    ids = [c.id for c in clips]
    default = st.session_state.get("clip_id")
    idx = ids.index(default) if default in ids else len(ids) - 1
    cid = st.selectbox("Clip", ids, index=idx, format_func=lambda i: _clip_label(next(c for c in clips if c.id == i)))
    st.session_state["clip_id"] = cid
    clip = next(c for c in clips if c.id == cid)
    if user.role == "owner":
        _date_editor(store, user, clip)
    if clip.status != "done":
        _jobs(user, dog.id)
        return
    report = store.report(clip)
    assert report is not None
    if clip.pose_source == "rendered":
        st.caption("Demo clip: rendered by Hindsight, analysed from the keypoints it was drawn from.")
    left, right = st.columns([3, 2])
    with left:
        if clip.overlay_sha256:
            st.video(str(store.blobs.path(clip.overlay_sha256)))
    with right:
        q = report["quality"]
        st.write(f"**View:** {q['view']} · **direction:** {q['direction']} · **hind strides:** {q['hind_strides']}")
        st.write(f"**Frame rate:** {q['fps']:.0f} fps · **camera:** {q['camera_motion']}")
        for n in q.get("notes", []):
            st.caption(n)
    _metric_cards(report)
    _muscle_card(report)
    if report["quality"]["usable"]:
        from vision.dashboard.figures import per_stride_chart, phase_chart

        a, b = st.columns(2)
        a.plotly_chart(per_stride_chart(report))
        b.plotly_chart(phase_chart(report))
    st.download_button(
        "Download report (JSON)",
        data=store.blobs.read_bytes(clip.report_sha256 or ""),
        file_name=f"hindsight-{dog.name}-{clip.recorded_on}.json",
        mime="application/json",
    )


def _side_by_side(store: Store, before: Clip, after: Clip) -> Path | None:
    """Cached phase-aligned side-by-side video of two analysed clips."""
    from vision.gait.events import detect_events
    from vision.io import load_poses
    from vision.sidebyside import render_side_by_side

    cache = store.data_dir / "cache"
    cache.mkdir(exist_ok=True)
    out = cache / f"sbs_{before.id}_{after.id}.mp4"
    if out.exists():
        return out
    strikes: list[Any] = []
    for clip in (before, after):
        if not clip.tracks_sha256 or not clip.overlay_sha256:
            return None
        tmp = cache / f"tracks_{clip.id}.nc"
        store.blobs.copy_to(clip.tracks_sha256, tmp)
        from vision.clean import smooth

        ds = load_poses(tmp)
        strikes.append(detect_events(smooth(ds) if clip.pose_source == "rendered" else ds).strikes.get("left_hind", []))
    render_side_by_side(
        store.blobs.path(before.overlay_sha256 or ""),
        strikes[0],
        store.blobs.path(after.overlay_sha256 or ""),
        strikes[1],
        out,
        labels=(f"{before.recorded_on:%d %b}", f"{after.recorded_on:%d %b}"),
    )
    return out


def _comparison_view(store: Store, before: Clip, after: Clip, comparison: dict[str, Any]) -> None:
    from vision.dashboard.figures import comparison_chart

    if st.toggle("Show both clips side by side, in step", value=False, key=f"sbs_{before.id}_{after.id}"):
        with st.spinner("Aligning the clips on their strides…"):
            path = _side_by_side(store, before, after)
        if path:
            st.video(str(path))
    if comparison["flag"]:
        st.error(
            "Worse beyond the clips' own stride-to-stride noise: "
            + ", ".join(comparison["metrics"][k]["label"] for k in comparison["worse"])
        )
    else:
        st.success("No worsening beyond the clips' own stride-to-stride noise.")
    for note in comparison.get("notes", []):
        st.caption(note)
    rows = [
        {
            "metric": m["label"],
            "before": m["before"],
            "after": m["after"],
            "change": m["change"],
            "95% interval": None if not m.get("ci95") else f"{m['ci95'][0]:+.2f} … {m['ci95'][1]:+.2f}",
            "status": m["status"],
        }
        for m in comparison["metrics"].values()
    ]
    st.dataframe(rows, hide_index=True)
    st.plotly_chart(comparison_chart(comparison))


def compare_page() -> None:
    """Two clips of the same dog: changes with intervals, side by side, and the weekly trend."""
    page = _page("Compare", "No dog selected.")
    if page is None:
        return
    user, store, dog = page
    clips = [c for c in store.clips_for_dog(user, dog.id) if c.status == "done"]
    if len(clips) < 2:
        st.info("Two analysed clips are needed to compare.")
        return
    latest = clips[-1]
    base = store.baseline_for(latest) or clips[-2]
    ids = [c.id for c in clips]
    label = {c.id: _clip_label(c) for c in clips}
    a, b = st.columns(2)
    before_id = a.selectbox("Before (baseline)", ids, index=ids.index(base.id), format_func=lambda i: label[i])
    after_id = b.selectbox("After", ids, index=ids.index(latest.id), format_func=lambda i: label[i])
    before = next(c for c in clips if c.id == before_id)
    after = next(c for c in clips if c.id == after_id)
    comparison = store.compare(before, after)
    if comparison is None:
        st.warning("A report is missing.")
        return
    _comparison_view(store, before, after, comparison)
    from vision.dashboard.figures import trend_chart

    flagged = set(store.flagged_clips(user, dog.id))
    st.plotly_chart(trend_chart(_history(store, clips), [c.recorded_on for c in clips if c.id in flagged]))


def review_page() -> None:
    """A vet's queue of flagged clips: both clips, the changes, notes, status and a PDF."""
    user = current_user()
    assert user is not None
    store = get_store()
    _sidebar(user)
    st.title("Vet review")
    if user.role != "vet":
        st.info("The review queue is for vets. Share your dog with your vet on the Dogs page.")
        return
    show_all = st.toggle("Show reviewed too", value=False)
    queue = store.review_queue(user, include_done=show_all)
    if not queue:
        st.success("Nothing waiting for review.")
        return
    for review in queue:
        after = store.get_clip(user, review.clip_id)
        before = store.get_clip(user, review.baseline_clip_id)
        dog = store.get_dog(user, after.dog_id)
        with st.expander(
            f"⚑ {dog.name}: {before.recorded_on:%d %b} → {after.recorded_on:%d %b} ({review.status})",
            expanded=len(queue) == 1 or review.status == "pending",
        ):
            comparison = store.comparison_of(review)
            _comparison_view(store, before, after, comparison)
            with st.form(f"review_{review.id}"):
                notes = st.text_area("Notes", value=review.notes, key=f"notes_{review.id}")
                statuses = ["pending", "reviewed", "needs_visit", "no_concern"]
                status = st.radio(
                    "Status",
                    statuses,
                    index=statuses.index(review.status),
                    horizontal=True,
                    format_func=lambda s: s.replace("_", " "),
                    key=f"status_{review.id}",
                )
                if st.form_submit_button("Save"):
                    store.update_review(user, review.id, status, notes)
                    st.rerun()
            history = _history(store, [c for c in store.clips_for_dog(user, dog.id) if c.status == "done"])
            from vision.pdf import vet_report_pdf

            pdf = vet_report_pdf(
                dog={"name": dog.name, "breed": dog.breed, "birth_date": dog.birth_date, "weight_kg": dog.weight_kg},
                before={"date": before.recorded_on, "report": store.report(before)},
                after={"date": after.recorded_on, "report": store.report(after)},
                comparison=comparison,
                history=history,
                vet_name=user.name,
                notes=review.notes,
                status=review.status,
            )
            st.download_button(
                "PDF report",
                data=pdf,
                file_name=f"hindsight-{dog.name}-{after.recorded_on}.pdf",
                mime="application/pdf",
                key=f"pdf_{review.id}",
            )


PAGES = {
    "dogs": (dogs_page, "Dogs", "🐕"),
    "upload": (upload_page, "Upload", "⬆️"),
    "clip": (clip_page, "Clip", "🎞️"),
    "compare": (compare_page, "Compare", "⚖️"),
    "review": (review_page, "Vet review", "🩺"),
}


def run() -> None:
    """Build the navigation for the logged-in user and run the chosen page."""
    st.set_page_config(page_title="Hindsight", page_icon="🐾", layout="wide")
    user = current_user()
    if user is None:
        st.navigation([st.Page(login_page, title="Log in", url_path="login", default=True)]).run()
        return
    start = st.session_state.get("start_page") or ("review" if user.role == "vet" else "dogs")
    pages = [
        st.Page(fn, title=title, icon=icon, url_path=key, default=(key == start))
        for key, (fn, title, icon) in PAGES.items()
        if not (key == "upload" and user.role == "vet")
    ]
    st.navigation(pages).run()
