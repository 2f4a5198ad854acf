"""Small helpers shared by the pages (not a page itself). Pages hold no SQL and no rules: they call service
functions with a session and the current user."""
from __future__ import annotations

import time

import streamlit as st

from core.auth import load_active_user
from core.db import read_scope
from core.models import User

AUTH_KEY = "auth"  # session_state: {"user_id", "login_at", "last_seen"} – plain values only, never ORM objects


def current_user() -> User | None:
    """The signed-in user, re-read from the database (a detached copy) on every rerun."""
    auth = st.session_state.get(AUTH_KEY)
    if not auth:
        return None
    with read_scope() as session:  # every rerun of every page: no lock, so it never queues behind a writer
        user = load_active_user(session, auth["user_id"])
        if user is not None:
            session.expunge(user)
    return user


def sign_in(user: User) -> None:
    now = time.time()
    st.session_state[AUTH_KEY] = {"user_id": user.id, "login_at": now, "last_seen": now}


def sign_out(message: str | None = None) -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if message:
        st.session_state["signed_out_message"] = message


def show_text(label: str, value: object) -> None:
    """Imported text is shown as plain text, never as Markdown or HTML (a police extract is untrusted input)."""
    st.caption(label)
    st.text("" if value is None else str(value))


def enter_page(name: str) -> None:
    """Called at the top of a page: counts a new visit when the user arrives from another page (views are audited
    once per record per visit, not on every rerun)."""
    if st.session_state.get("current_page") != name:
        st.session_state["current_page"] = name
        st.session_state["page_visit"] = st.session_state.get("page_visit", 0) + 1


def page_visit() -> int:
    return st.session_state.get("page_visit", 0)


def mark_viewed(entity: str, entity_id) -> bool:
    """True the first time ``entity_id`` is shown in this page visit (so the view is audited once)."""
    seen = st.session_state.setdefault("viewed", set())
    key = (page_visit(), entity, entity_id)
    if key in seen:
        return False
    seen.add(key)
    return True


def label(value) -> str:
    """'not_possible' / ActionStatus.not_possible -> 'not possible' (pandas 3 turns str enums into plain str)."""
    return str(getattr(value, "value", value) or "").replace("_", " ")


_MD_SPECIAL = "\\`*_{}[]()#+-.!|<>~$"


def md_escape(text) -> str:
    """Text from a police extract (or any user) made inert for the Markdown that st.subheader, st.error and
    friends render: no links, images, emphasis or headings can be smuggled in."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))


def seen_version(key: str, current: int | None) -> int | None:
    """The version of a record as it was when the user started editing it on this page. The page re-reads the
    record on every rerun, so passing the re-read version to a save would let a colleague's change made meanwhile
    be silently overwritten; the first version seen is kept until ``forget_version`` (after a save or conflict)."""
    return st.session_state.setdefault("seen_versions", {}).setdefault(key, current)


def forget_version(key: str) -> None:
    st.session_state.get("seen_versions", {}).pop(key, None)
