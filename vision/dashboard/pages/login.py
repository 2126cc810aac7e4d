"""Log in, or create an owner account. Vet accounts are made by an operator or with an invitation."""

from __future__ import annotations

import os

import streamlit as st

from vision.dashboard.state import forget_session_cookie, get_store, log_in

#: Set by ``hindsight demo --serve``: only then are the demo logins shown.
DEMO_ENV = "HINDSIGHT_DEMO"


def page() -> None:
    """The login form, the owner sign-up form and, in demo mode only, the demo logins."""
    forget_session_cookie()
    st.title("Hindsight")
    st.caption("Weekly hind-leg gait checks from a phone video — for owners, vets and physiotherapists.")
    store = get_store()
    with st.form("login"):
        email = st.text_input("E-mail", key="login_email", max_chars=254)
        password = st.text_input("Password", type="password", key="login_password", max_chars=256)
        if st.form_submit_button("Log in"):
            user = store.authenticate(email, password)
            if user is None:
                st.error("Wrong e-mail or password.")
            else:
                log_in(user)
                st.rerun()
    with st.expander("Create an owner account"), st.form("signup"):
        name = st.text_input("Name", max_chars=120)
        new_email = st.text_input("E-mail", key="signup_email", max_chars=254)
        new_password = st.text_input(
            "Password (8 characters or more)", type="password", key="signup_password", max_chars=256
        )
        st.caption("Vets and physiotherapists: ask the practice's Hindsight operator for an account.")
        if st.form_submit_button("Create account"):
            try:
                user = store.create_user(new_email, name, "owner", new_password)
            except ValueError as exc:
                st.error(str(exc))
            else:
                log_in(user)
                st.rerun()
    if os.environ.get(DEMO_ENV):
        st.info("Demo: owner **owner@demo.hindsight** / `demo-owner`, vet **vet@demo.hindsight** / `demo-vet-1`.")
