"""End to end in a real browser: sign in with a council account through ``st.login``, against the stub OIDC
provider the test run starts on 127.0.0.1 (``tests/oidc_stub.py``, fixture ``oidc_app`` in conftest). The browser
goes app -> /auth/login -> stub /authorize -> app /oauth2callback; Streamlit's server (Authlib) fetches the tokens
from the stub and checks the RS256 ID token; the sign-in page then matches the claims to a DA Daily account
(``core.oidc``). Every check is an auto-waiting ``expect``; nothing sleeps.
"""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text

from core.oidc import NOT_SET_UP

pytestmark = pytest.mark.browser

COUNCIL_BUTTON = "Sign in with your council account"


@pytest.fixture(scope="module")
def streamlit_app(oidc_app):
    """The OIDC-configured app, under the name conftest's report hook looks for (a failed test shows the end of
    the Streamlit server's log)."""
    return oidc_app.app


# ---------------------------------------------------------------------------------------------- helpers


def council_sign_in(page: Page, oidc_app, identity: dict) -> None:
    oidc_app.stub.identity = identity
    page.goto(oidc_app.app.url)
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()  # the local form stays
    page.get_by_role("button", name=COUNCIL_BUTTON, exact=True).click()


def audit_rows(app, action: str) -> list[tuple]:
    engine = create_engine(app.database_url)
    try:
        with engine.connect() as conn:
            return [(username, json.loads(details or "{}")) for username, details in conn.execute(
                text("SELECT username, details FROM audit_event WHERE action = :a ORDER BY id"), {"a": action})]
    finally:
        engine.dispose()


def identity_cookies(page: Page) -> list[str]:
    return [c["name"] for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]


def expect_signed_out(page: Page) -> None:
    expect(page.get_by_role("button", name=COUNCIL_BUTTON, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    expect(page.get_by_text("Signed in as")).to_have_count(0)


# ---------------------------------------------------------------------------------------------- tests


def test_coordinator_signs_in_with_the_council_account_and_out_again(page: Page, oidc_app, streamlit_app):
    app, stub = oidc_app.app, oidc_app.stub
    logins_before, requests_before = len(audit_rows(app, "login")), len(stub.requests)
    # The provider's spelling of the address differs in case from the DA Daily account's; the claims also say
    # "admin" and name someone else: role and name come from the DA Daily account only.
    council_sign_in(page, oidc_app, {"sub": "nsc-000417", "email": oidc_app.coordinator_email.upper(),
                                     "email_verified": True, "name": "C. Coordinator (Northshire CC)",
                                     "roles": ["admin"]})

    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text(f"Signed in as {app.display_name} (coordinator)")
    nav = page.get_by_test_id("stSidebarNav")
    for link in ("Notifications", "Import"):
        expect(nav.get_by_role("link", name=link, exact=True)).to_be_visible()
    expect(page).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/(notifications)?$"))
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Import", exact=True)).to_be_visible()

    assert [r for r in stub.requests[requests_before:] if r.startswith(("GET /authorize", "POST /token"))] == [
        "GET /authorize", "POST /token"]
    assert stub.issued[-1]["nonce"]  # Authlib sent a nonce and checked it came back in the ID token
    logins = audit_rows(app, "login")[logins_before:]
    assert len(logins) == 1
    username, details = logins[0]
    assert username == app.username
    assert (details["method"], details["subject"], details["issuer"]) == ("oidc", "nsc-000417", stub.issuer)

    # Signing out of DA Daily signs out of the council account too (st.logout -> the provider's logout).
    logouts_before = stub.logouts
    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out", exact=True).click()
    expect_signed_out(page)
    assert stub.logouts == logouts_before + 1
    assert identity_cookies(page) == []


def test_reloading_needs_the_identity_provider_again(page: Page, oidc_app, streamlit_app):
    """The identity cookie outlives the DA Daily session (30 days): a new session (here a reload) does not reuse
    the ID token that opened the previous one."""
    council_sign_in(page, oidc_app, {"sub": "nsc-000417", "email": oidc_app.coordinator_email,
                                     "email_verified": True, "name": "Casey"})
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as")
    issued = len(oidc_app.stub.issued)
    page.reload()
    expect_signed_out(page)
    assert identity_cookies(page)  # still there, and ignored
    page.get_by_role("button", name=COUNCIL_BUTTON, exact=True).click()  # through the provider again: a new token
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as")
    assert len(oidc_app.stub.issued) == issued + 1


def test_a_person_without_a_dadaily_account_is_refused(page: Page, oidc_app, streamlit_app):
    app, stub = oidc_app.app, oidc_app.stub
    failures_before = len(audit_rows(app, "login_failed"))
    council_sign_in(page, oidc_app, {"sub": "nsc-009999", "email": "pat.visitor@northshire.example.gov.uk",
                                     "email_verified": True, "name": "Pat Visitor"})

    expect(page.get_by_test_id("stAlertContentError")).to_have_text(NOT_SET_UP)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    expect(page.get_by_text("Signed in as")).to_have_count(0)
    expect(page.get_by_role("heading", name="Notifications")).to_have_count(0)
    failures = audit_rows(app, "login_failed")[failures_before:]
    assert len(failures) == 1
    username, details = failures[0]
    assert username is None
    assert (details["reason"], details["method"], details["email"]) == (
        "unknown email", "oidc", "pat.visitor@northshire.example.gov.uk")

    # "Back to sign-in" drops the identity cookie (st.logout) and returns to the ordinary sign-in page.
    logouts_before = stub.logouts
    page.get_by_role("button", name="Back to sign-in", exact=True).click()
    expect_signed_out(page)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    assert stub.logouts == logouts_before + 1
    assert identity_cookies(page) == []
