"""Log in, create an owner account, or use a vet invitation link (``?invite=TOKEN``).

Nothing here tells which e-mails have accounts: a refused login reads the same for any e-mail, sign-up
gives the same answer whether or not the e-mail was free (and does not log in), and an invitation
form answers the same whoever had the e-mail. Vet accounts are made only by an operator or from an
invitation.
"""

from __future__ import annotations

import os

import streamlit as st

from vision.dashboard.state import client_address, forget_session_cookie, get_store, log_in
from vision.storage.accounts import INVALID_INVITATION, TooManyAttempts

#: Set by ``hindsight demo --serve``: only then are the demo logins shown.
DEMO_ENV = "HINDSIGHT_DEMO"
SIGNED_UP = "If this e-mail was not registered yet, the account is ready: log in above."
INVITE_USED = (
    "If this e-mail had no account yet, your vet account is ready; if it had one, it is unchanged. "
    "Log in below: the shared dog is in your list."
)


def _invitation(token: str) -> None:
    """The invitation form: a name and a password make the vet account for the invited e-mail."""
    store = get_store()
    if st.session_state.get("invite_done") == token:
        st.success(INVITE_USED)
        return
    email = store.invitation_email(token)
    if email is None:
        st.error(INVALID_INVITATION)
        return
    st.subheader("Invitation for a vet or physiotherapist")
    st.text(f"For {email}")
    st.caption("Already have an account with this e-mail? Just log in below: the dog is in your list.")
    with st.form("invite"):
        name = st.text_input("Your name", key="invite_name", max_chars=120)
        password = st.text_input(
            "Choose a password (8 to 256 characters)", type="password", key="invite_password", max_chars=256
        )
        if st.form_submit_button("Create my vet account"):
            try:
                store.accept_invitation(token, name, password)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state["invite_done"] = token
                st.success(INVITE_USED)


def page() -> None:
    """The invitation form (from a link), the login form, owner sign-up and, in demo mode only, the demo logins."""
    forget_session_cookie()
    st.title("Hindsight")
    st.caption("Weekly hind-leg gait checks from a phone video — for owners, vets and physiotherapists.")
    store = get_store()
    token = st.query_params.get("invite")
    if token:
        _invitation(str(token))
    with st.form("login"):
        email = st.text_input("E-mail", key="login_email", max_chars=254)
        password = st.text_input("Password", type="password", key="login_password", max_chars=256)
        if st.form_submit_button("Log in"):
            try:
                user = store.authenticate(email, password, address=client_address())
            except TooManyAttempts as exc:
                st.error(str(exc))
            else:
                if user is None:
                    st.error("Wrong e-mail or password.")
                else:
                    st.query_params.pop("invite", None)
                    log_in(user)
                    st.rerun()
    with st.expander("Create an owner account"), st.form("signup", clear_on_submit=True):
        name = st.text_input("Name", max_chars=120)
        new_email = st.text_input("E-mail", key="signup_email", max_chars=254)
        new_password = st.text_input(
            "Password (8 to 256 characters)", type="password", key="signup_password", max_chars=256
        )
        st.caption("Vets and physiotherapists: the owner who shares a dog sends you an invitation link.")
        if st.form_submit_button("Create account"):
            try:
                store.sign_up_owner(new_email, name, new_password)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.success(SIGNED_UP)
    if os.environ.get(DEMO_ENV):
        st.info("Demo: owner **owner@demo.hindsight** / `demo-owner`, vet **vet@demo.hindsight** / `demo-vet-1`.")
