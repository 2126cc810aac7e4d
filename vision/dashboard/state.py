"""What every page shares: the store, the user, the chosen dog and clip, and the page guard.

The logged-in user is kept across a refresh, the chosen dog and clip in the URL, and the guard turns
any error into one plain line.

The session survives a refresh through a cookie holding a random token of a login session kept in the
database (:meth:`vision.storage.Store.open_session`; only the token's hash is stored). Every run checks
the token, so logging out, a password change or the session's expiry ends it at once, on every
dashboard host, whatever the browser still holds. The cookie is written by a small script in the page
(Streamlit cannot set cookies itself), so it is not HttpOnly; it is ``SameSite=Strict`` and ``Secure``
over HTTPS.
"""

from __future__ import annotations

import functools
import logging
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


def release_media_when_the_page_closes() -> None:
    """Make this browser session end when its page closes, so that its ``/media/...`` URLs stop answering.

    Streamlit serves the media a page shows (the annotated video, images) at ``/media/...`` URLs that
    answer without a login. It keeps a closed page's session for ``server.disconnectedSessionTTL``
    seconds so that it can be resumed, and then drops it without shutting it down, so the media it
    showed stayed served until the server restarted. A session marked not resumable is shut down as
    soon as its page disconnects, which releases its media; a returning user is logged in again by
    the session cookie. This uses Streamlit's runtime objects (not a public API): when they are not
    there, it logs and does nothing.
    """
    try:
        from streamlit.runtime import get_instance
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        info = get_instance()._session_mgr.get_active_session_info(ctx.session_id) if ctx else None
        if info is not None and info.session.is_resumable():
            info.session.clear_user_info()
    except Exception:  # a Streamlit without these internals: media stay served as before (docs/deploy.md)
        LOG.warning("could not mark the session as ending with its page", exc_info=True)


def _cookie_script(value: str, max_age: int) -> str:
    return (
        "<script>const secure = window.parent.location.protocol === 'https:' ? '; Secure' : '';"
        f"window.parent.document.cookie = '{SESSION_COOKIE}={value}; Max-Age={max_age}; Path=/; SameSite=Strict'"
        " + secure;</script>"
    )


def keep_session_cookie(user: User) -> None:
    """Write this session's token into the browser's cookie (an invisible element; repeated runs reuse it)."""
    import streamlit.components.v1 as components

    token = st.session_state.get("session_token")
    if token:
        components.html(_cookie_script(token, SESSION_TTL_S), height=0)


def current_user() -> User | None:
    """The logged-in user: the token of this browser tab, else of its cookie (after a refresh), if still open."""
    store = get_store()
    token = st.session_state.get("session_token")
    if token is None and not st.session_state.get("logged_out"):
        token = st.context.cookies.get(SESSION_COOKIE)
    user = store.session_user(token)
    if user is None:
        st.session_state.pop("session_token", None)
        return None
    st.session_state["session_token"] = token
    return user


def log_in(user: User) -> None:
    """Start a login session for ``user`` (the cookie is written on the next run)."""
    st.session_state.clear()
    st.session_state["session_token"] = get_store().open_session(user, SESSION_TTL_S)


def log_out() -> None:
    """End the login session in the database and mark the browser's cookie for removal."""
    get_store().close_session(st.session_state.get("session_token"))
    st.session_state.clear()
    st.session_state["logged_out"] = True


def forget_session_cookie() -> None:
    """Remove the session cookie from the browser after a log-out."""
    import streamlit.components.v1 as components

    if st.session_state.get("logged_out"):
        components.html(_cookie_script("", 0), height=0)


def client_address() -> str | None:
    """The browser's address as Streamlit gives it (None for a local connection, or when it gives none)."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - no context (a bare script run): the per-account limit still applies
        return None
    return str(address) if address else None


def invitation_link(token: str) -> str:
    """The link a vet opens to use an invitation: this dashboard's address with ``?invite=TOKEN``.

    Only the path and query (``?invite=TOKEN``) when Streamlit does not give the page's address.
    """
    from urllib.parse import urlsplit

    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no context: the relative link still works when pasted after the address
        url = None
    if not url:
        return f"?invite={token}"
    parts = urlsplit(str(url))
    base = parts.path.rsplit("/", 1)[0] if parts.path else ""
    return f"{parts.scheme}://{parts.netloc}{base}/?invite={token}"


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
