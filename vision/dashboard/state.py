"""What every page shares: the store, the user, the chosen dog and clip, and the page guard.

The logged-in user is kept across a refresh, the chosen dog and clip in the URL, and the guard turns
any error into one plain line.

The session survives a refresh through a signed, expiring cookie: ``<user id>.<expiry>.<HMAC-SHA256>``
keyed by a random secret kept in the data folder (``session.key``, mode 0600). The cookie is written by a
small script in the page (Streamlit cannot set cookies itself), so it is not HttpOnly; it is
``SameSite=Strict`` and ``Secure`` over HTTPS. Logging out clears it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from vision.errors import DamagedFileError
from vision.storage import Store
from vision.storage.models import Clip, Dog, User

LOG = logging.getLogger("hindsight.dashboard")
SESSION_COOKIE = "hindsight_session"
SESSION_TTL_S = 14 * 24 * 3600
PAGE_ERROR = "Something went wrong on this page. It has been logged; reload the page or try again later."
STATUS_WORDS = {
    "uploaded": "not analysed yet",
    "queued": "waiting to be analysed",
    "running": "being analysed",
    "done": "analysed",
    "failed": "analysis failed",
    "interrupted": "analysis stopped",
}


@st.cache_resource
def get_store() -> Store:
    """One store per server process (data folder from ``HINDSIGHT_DATA_DIR``).

    Its crash leftovers are collected now and hourly (:func:`vision.storage.cleanup.start_background_cleanup`).
    """
    from vision.dashboard.analysis_jobs import refresh
    from vision.storage.cleanup import start_background_cleanup

    store = Store()
    refresh(store)
    start_background_cleanup(store)
    return store


# --- session ---------------------------------------------------------------------------------------


def _secret(store: Store) -> bytes:
    """The server's session-signing key, created on first use (32 random bytes, readable by the owner only)."""
    path = store.data_dir / "session.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()


def _signature(store: Store, payload: str) -> str:
    return hmac.new(_secret(store), payload.encode(), hashlib.sha256).hexdigest()


def session_token(store: Store, user_id: int, *, now: float | None = None) -> str:
    """A signed token naming ``user_id``, valid for :data:`SESSION_TTL_S` seconds from ``now``."""
    payload = f"{int(user_id)}.{int((now or time.time()) + SESSION_TTL_S)}"
    return f"{payload}.{_signature(store, payload)}"


def user_id_from_token(store: Store, token: str | None, *, now: float | None = None) -> int | None:
    """The user id of a valid, unexpired token, else None (forged, altered, expired or malformed)."""
    parts = (token or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    payload = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_signature(store, payload), parts[2]):
        return None
    if int(parts[1]) < (now or time.time()):
        return None
    return int(parts[0])


def _cookie_script(value: str, max_age: int) -> str:
    return (
        "<script>const secure = window.parent.location.protocol === 'https:' ? '; Secure' : '';"
        f"window.parent.document.cookie = '{SESSION_COOKIE}={value}; Max-Age={max_age}; Path=/; SameSite=Strict'"
        " + secure;</script>"
    )


def keep_session_cookie(user: User) -> None:
    """Write the signed session cookie into the browser (an invisible element; repeated runs reuse it)."""
    import streamlit.components.v1 as components

    token = st.session_state.get("session_token")
    if not token:
        token = st.session_state["session_token"] = session_token(get_store(), user.id)
    components.html(_cookie_script(token, SESSION_TTL_S), height=0)


def current_user() -> User | None:
    """The logged-in user: from this session, else from a valid session cookie (after a refresh)."""
    store = get_store()
    uid = st.session_state.get("user_id")
    if uid is None and not st.session_state.get("logged_out"):
        token = st.context.cookies.get(SESSION_COOKIE)
        uid = user_id_from_token(store, token)
        if uid is not None:
            st.session_state["user_id"], st.session_state["session_token"] = uid, token
    return store.get_user(uid) if uid else None


def log_in(user: User) -> None:
    """Start a session for ``user`` (the cookie is written on the next run)."""
    st.session_state.clear()
    st.session_state["user_id"] = user.id


def log_out() -> None:
    """End the session and mark the cookie for removal."""
    st.session_state.clear()
    st.session_state["logged_out"] = True


def forget_session_cookie() -> None:
    """Remove the session cookie from the browser after a log-out."""
    import streamlit.components.v1 as components

    if st.session_state.get("logged_out"):
        components.html(_cookie_script("", 0), height=0)


def damaged_line(exc: DamagedFileError) -> str:
    """The one line a damaged stored file gets: what it is and what to do (no path, no digest)."""
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]} — re-analyse it."


# --- the page guard ---------------------------------------------------------------------------------


def guarded(page: Callable[[], None]) -> Callable[[], None]:
    """Run ``page``; any error is logged with its traceback and shown as one line, never a traceback."""

    @functools.wraps(page)
    def run() -> None:
        try:
            page()
        except ScriptControlException:
            raise  # st.rerun / st.stop / st.switch_page
        except Exception:  # noqa: BLE001 - the promise is one plain line for the user, the detail in the log
            LOG.exception("page %s failed", page.__name__)
            st.error(PAGE_ERROR)

    return run


# --- links between pages ---------------------------------------------------------------------------


def link_to_page(key: str, label: str, **params: int) -> None:
    """A link to the page registered as ``key`` (see :mod:`vision.dashboard.navigation`) with query parameters."""
    pages = st.session_state.get("_pages") or {}
    if key in pages:
        st.page_link(pages[key], label=label, icon="➡️", query_params={k: str(v) for k, v in params.items()})


# --- dog and clip choice ----------------------------------------------------------------------------


def _query_int(name: str) -> int | None:
    raw = st.query_params.get(name)
    return int(raw) if raw is not None and str(raw).isdigit() else None


def clip_label(clip: Clip) -> str:
    """Date, upload time and a short label (file name), plus the clip's state in words.

    A clip with no known recording date is named by its upload date and time, marked as such.
    """
    name = (clip.original_name or "").strip()
    short = name if len(name) <= 28 else name[:25] + "..."
    when = f"{clip.recorded_on:%d %b %Y}"
    if clip.recorded_on_known is False:  # only the upload is dated: say so, never a made-up filming date
        when = "recording date unknown, uploaded " + (
            f"{clip.uploaded_at:%d %b %Y %H:%M}" if clip.uploaded_at is not None else when
        )
    elif clip.uploaded_at is not None:
        when += f", uploaded {clip.uploaded_at:%H:%M}"
    state = STATUS_WORDS.get(clip.status, clip.status)
    demo = " (demo)" if clip.pose_source == "rendered" else ""
    return f"{when} · {short or 'clip ' + str(clip.id)}{demo} · {state}"


def pick(label: str, clips: Sequence[Clip], param: str, default: Clip) -> Clip:
    """A clip picker that keeps the user's choice and mirrors it in the URL's ``param`` query parameter.

    The URL's value wins on the first run (a link or a refresh opens that clip); afterwards the
    widget's own state is kept, so a choice is never undone by a rerun.
    """
    ids = [c.id for c in clips]
    key = f"pick_{param}"
    if st.session_state.get(key) not in ids:
        wanted = _query_int(param)
        if wanted not in ids:
            wanted = st.session_state.get(f"chosen_{param}")
        st.session_state[key] = wanted if wanted in ids else default.id
    by_id = {c.id: c for c in clips}
    chosen = st.selectbox(label, ids, key=key, format_func=lambda i: clip_label(by_id[i]))
    st.query_params[param] = str(chosen)
    st.session_state[f"chosen_{param}"] = chosen  # kept while the user visits other pages
    return by_id[chosen]


def sidebar(user: User) -> Dog | None:
    """Who is logged in, the log-out button and the dog picker (kept in the URL as ``dog``)."""
    store = get_store()
    st.sidebar.text(f"Logged in as {user.name} ({'vet' if user.role == 'vet' else 'owner'})")
    if st.sidebar.button("Log out"):
        log_out()
        st.rerun()
    dogs = store.dogs_for(user)
    if not dogs:
        return None
    by_id = {d.id: d for d in dogs}
    if st.session_state.get("pick_dog") not in by_id:
        wanted = _query_int("dog")
        st.session_state["pick_dog"] = wanted if wanted in by_id else dogs[0].id
    choice = st.sidebar.selectbox("Dog", list(by_id), key="pick_dog", format_func=lambda i: by_id[i].name)
    st.query_params["dog"] = str(choice)
    return by_id[choice]


def page_start(title: str, no_dog: str) -> tuple[User, Store, Dog] | None:
    """Common page start: the logged-in user, the store, the sidebar's dog and the title.

    Returns None (after saying why) when no dog is available.
    """
    user = current_user()
    if user is None:
        raise PermissionError("not logged in")
    dog = sidebar(user)
    st.title(title)
    if dog is None:
        st.info(no_dog)
        return None
    return user, get_store(), dog


def history(store: Store, clips: Sequence[Clip]) -> list[tuple[Any, dict[str, Any] | None]]:
    """(recording date, report) of each analysed clip; a damaged report reads as None."""
    out = []
    for c in clips:
        if c.status != "done":
            continue
        try:
            out.append((c.recorded_on, store.report(c)))
        except Exception:  # noqa: BLE001 - one damaged report must not break the dog's other pages
            LOG.exception("report of clip %s unreadable", c.id)
            out.append((c.recorded_on, None))
    return out
