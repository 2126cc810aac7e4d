"""The dashboard's entry: page set-up, the navigation for the logged-in user, and every page guarded.

Logged out, every page's URL shows the login form (so a link opened directly lands on its page after
logging in, never on "Page not found").
"""

from __future__ import annotations

import streamlit as st

from vision.dashboard.pages import clip, compare, dogs, login, review, upload
from vision.dashboard.state import current_user, guarded, keep_session_cookie, release_media_when_the_page_closes

#: url path -> (page module, title, icon)
PAGES = {
    "dogs": (dogs, "Dogs", "🐕"),
    "upload": (upload, "Upload", "⬆️"),
    "clip": (clip, "Clip", "🎞️"),
    "compare": (compare, "Compare", "⚖️"),
    "review": (review, "Vet review", "🩺"),
}


def run() -> None:
    """Build the navigation for the logged-in user and run the chosen page."""
    st.set_page_config(page_title="Hindsight", page_icon="🐾", layout="wide")
    release_media_when_the_page_closes()
    user = current_user()
    if user is None:
        pages = [st.Page(guarded(login.page), title="Log in", url_path="login", default=True)] + [
            st.Page(guarded(login.page), title="Log in", url_path=key) for key in PAGES
        ]
        st.navigation(pages, position="hidden").run()
        return
    keep_session_cookie(user)
    if st.query_params.get("invite"):
        st.info("This is a vet's invitation link: log out first to use it.")
    start = st.session_state.get("start_page") or ("review" if user.role == "vet" else "dogs")
    registered = {
        key: st.Page(guarded(module.page), title=title, icon=icon, url_path=key, default=(key == start))
        for key, (module, title, icon) in PAGES.items()
        if not (key == "upload" and user.role == "vet")
    }
    st.session_state["_pages"] = registered
    st.navigation(list(registered.values())).run()
