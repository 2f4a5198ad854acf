"""DA Daily – entry point and router: sign-in, first run, and the pages each role is offered.

Run: streamlit run app.py
"""
from __future__ import annotations

import time

import streamlit as st

from core.auth import (
    AuthError,
    PasswordRejected,
    authenticate,
    change_password,
    count_users,
    create_first_coordinator,
)
from core.db import migrate, read_scope, session_scope
from core.scope import pages_for
from core.settings import get_settings
from pages.common import AUTH_KEY, current_user, md_escape, sign_in, sign_out

st.set_page_config(page_title="DA Daily", page_icon=":material/shield_person:", layout="wide")


@st.cache_resource
def _schema_ready() -> bool:
    """Bring the database to the newest schema once per server process."""
    migrate()
    return True


_schema_ready()

PAGES = {
    "dashboard": st.Page("pages/dashboard.py", title="Dashboard", icon=":material/monitoring:", url_path="dashboard"),
    "notifications": st.Page("pages/notifications.py", title="Notifications", icon=":material/list_alt:",
                             url_path="notifications"),
    "import": st.Page("pages/import_extract.py", title="Import", icon=":material/upload_file:", url_path="import"),
    "agenda": st.Page("pages/agenda.py", title="Agenda", icon=":material/event_note:", url_path="agenda"),
    "meeting": st.Page("pages/meeting.py", title="Meeting", icon=":material/groups:", url_path="meeting"),
    "actions": st.Page("pages/actions.py", title="Actions", icon=":material/task_alt:", url_path="actions"),
    "overdue": st.Page("pages/overdue.py", title="Overdue actions", icon=":material/alarm:", url_path="overdue"),
    "encompass": st.Page("pages/encompass.py", title="Encompass", icon=":material/school:", url_path="encompass"),
    "schools": st.Page("pages/schools.py", title="Schools and key adults", icon=":material/domain:",
                       url_path="schools"),
    "my_actions": st.Page("pages/my_actions.py", title="My actions", icon=":material/task_alt:", url_path="my-actions"),
    "alerts": st.Page("pages/alerts.py", title="Encompass alerts", icon=":material/school:", url_path="alerts"),
    "users": st.Page("pages/users.py", title="Users and agencies", icon=":material/group:", url_path="users"),
    "audit": st.Page("pages/audit_log.py", title="Audit log", icon=":material/policy:", url_path="audit"),
    "account": st.Page("pages/account.py", title="My account", icon=":material/person:", url_path="account"),
}


def first_run() -> None:
    st.title("Welcome to DA Daily")
    st.write("There are no accounts yet. Create the first coordinator account.")
    with st.form("first_run"):
        name = st.text_input("Your name")
        username = st.text_input("Username")
        email = st.text_input("Email (optional)")
        password = st.text_input("Password", type="password", help=f"At least {get_settings().password_min_length} characters")
        again = st.text_input("Password again", type="password")
        demo = st.checkbox("Load the synthetic demo data set (made-up people, for trying DA Daily out)")
        submitted = st.form_submit_button("Create coordinator account")
    if submitted:
        if password != again:
            st.error("The passwords differ.")
            return
        try:
            with session_scope() as session:
                user = create_first_coordinator(session, username=username, display_name=name, password=password,
                                                email=email or None)
                if demo:
                    from dv.demo import load_demo

                    load_demo(session, user)
                session.expunge(user)
        except (ValueError, PasswordRejected) as exc:
            st.error(str(exc))
            return
        sign_in(user)
        st.rerun()


def login() -> None:
    from core.oidc import claims_usable, login_provider, user_for_claims

    st.title("DA Daily")
    if msg := st.session_state.pop("signed_out_message", None):
        st.info(msg)
    provider = login_provider(st.secrets)  # None unless .streamlit/secrets.toml has a complete [auth] section
    if provider:
        # Back from the council's identity provider: its fresh, unused claims are matched to a DA Daily account
        # (core.oidc holds the rule); an old identity cookie is ignored and the person signs in again.
        refused = st.session_state.get("oidc_refused")
        claims = st.user.to_dict()
        if refused is None and claims.get("is_logged_in") and claims_usable(claims):
            try:
                with session_scope() as session:
                    user = user_for_claims(session, claims)
                    session.expunge(user)
            except AuthError as exc:
                refused = st.session_state["oidc_refused"] = str(exc)
            else:
                sign_in(user)
                st.session_state[AUTH_KEY]["method"] = "oidc"
                st.rerun()
        if refused is not None:
            st.error(refused)
            if st.button("Back to sign-in", key="oidc_back"):
                st.logout()  # drops the identity cookie, and the provider's session when it offers a logout
            return
        if st.button("Sign in with your council account", key="oidc_login", type="primary"):
            st.login(provider)
        st.caption("Or sign in with your DA Daily username and password:")
    with st.form("login"):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            with session_scope() as session:
                user = authenticate(session, username, password)
                session.expunge(user)
        except AuthError as exc:
            st.error(str(exc))
            return
        sign_in(user)
        st.rerun()


def must_change_password() -> None:
    st.title("Choose a new password")
    st.write("Your password was set by someone else. Choose your own before you go on.")
    with st.form("change"):
        current = st.text_input("Current (temporary) password", type="password")
        new = st.text_input("New password", type="password")
        again = st.text_input("New password again", type="password")
        submitted = st.form_submit_button("Change password")
    if submitted:
        if new != again:
            st.error("The new passwords differ.")
            return
        try:
            with session_scope() as session:
                user = current_user()
                session.add(user)
                change_password(session, user, current, new)
        except (AuthError, PasswordRejected) as exc:
            st.error(str(exc))
            return
        st.rerun()


def _session_expired() -> str | None:
    auth = st.session_state.get(AUTH_KEY)
    if not auth:
        return None
    settings, now = get_settings(), time.time()
    if now - auth["last_seen"] > settings.idle_timeout_minutes * 60:
        return "You were signed out after a period of inactivity."
    if now - auth["login_at"] > settings.session_lifetime_hours * 3600:
        return "Your session reached its maximum length; sign in again."
    auth["last_seen"] = now
    return None


def main() -> None:
    if not st.session_state.get(AUTH_KEY):  # someone signed in means the first run is long over: no query
        with read_scope() as session:
            users = count_users(session)
        if users == 0:
            st.navigation([st.Page(first_run, title="First run", url_path="first-run")], position="hidden").run()
            return
    if reason := _session_expired():
        sign_out(reason)
    user = current_user()
    if user is None:
        if st.session_state.get(AUTH_KEY):
            sign_out("Your account is no longer active.")
        st.navigation([st.Page(login, title="Sign in", url_path="sign-in")], position="hidden").run()
        return
    if user.must_change_password:
        st.navigation([st.Page(must_change_password, title="Change password", url_path="change-password")],
                      position="hidden").run()
        return
    pages = [PAGES[key] for key in pages_for(user)]
    with st.sidebar:
        st.caption(f"Signed in as {md_escape(user.display_name)} ({user.role.value})")  # typed text: inert
        if st.button("Sign out", key="sign_out"):
            via_oidc = st.session_state[AUTH_KEY].get("method") == "oidc" or st.user.get("is_logged_in")
            sign_out("You have signed out.")
            if via_oidc:
                st.logout()  # the browser leaves for the identity provider's logout, then the sign-in page
                st.stop()
            st.rerun()
    st.navigation(pages).run()


main()
