"""Council (OIDC) sign-in: the rule in ``core.oidc`` that turns an identity provider's claims into a DA Daily
account (on SQLite and PostgreSQL), when the sign-in page offers it, and the sign-in page's handling of ``st.user``
(AppTest). The whole flow through Streamlit, Authlib and a stub provider is in ``test_browser_oidc.py``."""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from core import oidc
from core.auth import AuthError, create_user
from core.db import get_engine, migrate, session_scope
from core.models import AuditEvent, UserRole
from core.oidc import claims_are_fresh, claims_usable, login_provider, oidc_configured, user_for_claims
from core.timeutil import utcnow
from tests.factories import unaudited

PASSWORD = "correct-horse-staple-7"
EMAIL = "Casey.Coordinator@Northshire.example.gov.uk"
ISSUER = "https://login.northshire.example.gov.uk"


def claims(email: str | None = EMAIL, **kw) -> dict:
    """What ``st.user`` holds after a sign-in: the ID token's claims (each call a new token: its own nonce)."""
    now = int(time.time())
    c = {"is_logged_in": True, "provider": "default", "iss": ISSUER, "aud": "dadaily", "sub": uuid.uuid4().hex,
         "iat": now, "exp": now + 300, "nonce": uuid.uuid4().hex, "email_verified": True, "name": "Casey C"}
    if email is not None:
        c["email"] = email
    c.update(kw)
    return c


def make(session, username, role=UserRole.coordinator, **kw):
    user = create_user(session, None, username=username, display_name=username.title(), role=role,
                       password=PASSWORD, **kw)
    session.commit()
    return user


def events(session, action: str) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all())


def refused(session, c: dict, message: str) -> AuditEvent:
    """``user_for_claims`` refuses with ``message``; the refusal's audit row survives the caller's rollback."""
    logins, failures = len(events(session, "login")), len(events(session, "login_failed"))
    with pytest.raises(AuthError) as err:
        user_for_claims(session, c)
    assert str(err.value) == message
    session.rollback()
    rows = events(session, "login_failed")
    assert len(rows) == failures + 1, "the refusal was not audited (or not committed)"
    assert len(events(session, "login")) == logins
    return rows[-1]


# ---------------------------------------------------------------------------------------------- matching


def test_matched_by_verified_email_case_insensitively(session):
    user = make(session, "coord", email=EMAIL)
    c = claims(email="  casey.coordinator@NORTHSHIRE.example.gov.uk ", preferred_username="someone-else")
    got = user_for_claims(session, c)
    session.commit()
    assert got.id == user.id
    assert got.last_login_utc is not None and abs(got.last_login_utc - utcnow()) < dt.timedelta(minutes=1)
    (row,) = events(session, "login")
    assert (row.user_id, row.username, row.role, row.outcome) == (user.id, "coord", "coordinator", "ok")
    details = json.loads(row.details)
    assert details["method"] == "oidc"
    assert (details["issuer"], details["subject"]) == (ISSUER, c["sub"])


def test_a_missing_email_verified_claim_is_not_a_refusal(session):
    user = make(session, "coord", email=EMAIL)
    c = claims()
    del c["email_verified"]
    assert user_for_claims(session, c).id == user.id


def test_role_agency_and_school_come_from_the_account_never_from_claims(session):
    user = make(session, "dsl", UserRole.school, email=EMAIL, school_urn="123456")
    got = user_for_claims(session, claims(role="coordinator", roles=["coordinator"], groups=["MASH coordinators"],
                                          school_urn="999999", agency_id=1))
    assert (got.id, got.role, got.school_urn, got.agency_id) == (user.id, UserRole.school, "123456", None)


@pytest.mark.parametrize("verified", [False, "false", "False"])
def test_an_unverified_email_is_refused(session, verified):
    make(session, "coord", email=EMAIL)
    row = refused(session, claims(email_verified=verified), oidc.UNVERIFIED)
    assert (row.user_id, row.outcome) == (None, "refused")
    details = json.loads(row.details)
    assert (details["reason"], details["method"], details["email"]) == ("email not verified", "oidc", EMAIL)


def test_an_unknown_email_is_refused_and_audited(session):
    make(session, "coord", email=EMAIL)
    row = refused(session, claims(email="someone.else@northshire.example.gov.uk"), oidc.NOT_SET_UP)
    assert oidc.NOT_SET_UP == "Your council account is not set up in DA Daily; ask a coordinator."
    assert (row.user_id, row.username, row.outcome) == (None, None, "refused")
    details = json.loads(row.details)
    assert details["reason"] == "unknown email"
    assert details["email"] == "someone.else@northshire.example.gov.uk"


@pytest.mark.parametrize("email", [None, "", "coord", 42])
def test_no_usable_email_claim_is_refused_never_matched_by_username(session, email):
    make(session, "coord", email=EMAIL)
    c = claims(email=email, preferred_username="coord", name="Coord")
    row = refused(session, c, oidc.NOT_SET_UP)
    assert json.loads(row.details)["reason"] == "no email claim"


def test_an_account_without_email_is_never_matched(session):
    make(session, "coord")  # no email on the account
    refused(session, claims(email="coord"), oidc.NOT_SET_UP)


def test_a_disabled_account_is_refused(session):
    user = make(session, "coord", email=EMAIL)
    with unaudited():
        user.disabled = True
        session.add(user)
        session.commit()
    row = refused(session, claims(), oidc.DISABLED)
    assert (row.user_id, row.username) == (user.id, "coord")
    assert json.loads(row.details)["reason"] == "disabled"


def test_a_locked_account_is_refused(session):
    user = make(session, "coord", email=EMAIL)
    with unaudited():
        user.locked_until_utc = utcnow() + dt.timedelta(minutes=10)
        session.add(user)
        session.commit()
    row = refused(session, claims(), oidc.LOCKED)
    assert json.loads(row.details)["reason"] == "locked"


def test_an_email_on_two_accounts_is_refused(session):
    make(session, "coord", email=EMAIL)
    make(session, "coord2", email=EMAIL.lower())
    row = refused(session, claims(), oidc.AMBIGUOUS)
    assert json.loads(row.details)["reason"] == "email matches several accounts"


# ---------------------------------------------------------------------------------------------- freshness, one use


def test_old_or_future_claims_are_refused(session):
    make(session, "coord", email=EMAIL)
    now = time.time()
    old = claims(iat=int(now) - oidc.MAX_CLAIMS_AGE_SECONDS - 5)
    future = claims(iat=int(now) + oidc.CLOCK_SKEW_SECONDS + 30)
    for c in (old, future, claims(iat=None), claims(iat="recent")):
        assert not claims_are_fresh(c, now)
        assert not claims_usable(c, now)
    assert claims_are_fresh(claims(iat=int(now) - 60), now)
    row = refused(session, old, oidc.STALE)
    assert json.loads(row.details)["reason"] == "stale claims"


def test_one_id_token_opens_one_session(session):
    """The identity cookie lives for 30 days: after a sign-out or an idle timeout, the same token must not sign
    the person straight back in (nor open a second session in another tab)."""
    user = make(session, "coord", email=EMAIL)
    c = claims()
    assert claims_usable(c)
    assert user_for_claims(session, c).id == user.id
    session.commit()
    assert not claims_usable(c)
    row = refused(session, c, oidc.STALE)
    assert json.loads(row.details)["reason"] == "claims already used"
    assert user_for_claims(session, claims()).id == user.id  # a new trip through the provider: a new token


# ---------------------------------------------------------------------------------------------- configuration


FLAT = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32, "client_id": "id",
        "client_secret": "secret", "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}


class NoSecretsFile:
    """Like ``st.secrets`` when there is no secrets.toml: reading it raises a FileNotFoundError subclass."""

    def get(self, key, default=None):
        raise FileNotFoundError("No secrets found")


def test_oidc_is_configured_only_by_a_complete_auth_section():
    assert not oidc_configured(None)
    assert not oidc_configured(NoSecretsFile())
    assert not oidc_configured({})
    assert not oidc_configured({"other": {"x": 1}})
    assert login_provider({"auth": FLAT}) == "default"
    assert oidc_configured({"auth": FLAT})
    for missing in ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url"):
        assert not oidc_configured({"auth": {k: v for k, v in FLAT.items() if k != missing}}), missing
    provider = {k: FLAT[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    named = {"redirect_uri": FLAT["redirect_uri"], "cookie_secret": FLAT["cookie_secret"], "northshire": provider}
    assert login_provider({"auth": named}) == "northshire"
    assert login_provider({"auth": {**named, "northshire": {"client_id": "id"}}}) is None
    underscored = {"redirect_uri": FLAT["redirect_uri"], "cookie_secret": FLAT["cookie_secret"], "north_shire": provider}
    assert login_provider({"auth": underscored}) is None  # Streamlit refuses provider names with "_"


# ---------------------------------------------------------------------------------------------- the sign-in page


@pytest.fixture
def app_db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    migrate(url)
    with session_scope(get_engine(url)) as s:
        create_user(s, None, username="coord", display_name="Casey Coordinator", role=UserRole.coordinator,
                    password=PASSWORD, email=EMAIL)
    yield url
    get_engine(url).dispose()


def _app(secrets: dict | None = None, user: dict | None = None) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=30)
    if secrets:
        at.secrets.update(secrets)
    if user is not None:
        at.user = user
    return at


def _labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def test_without_an_auth_section_the_sign_in_page_is_unchanged(app_db):
    at = _app(user=claims()).run()  # even with an identity present, nothing happens without [auth]
    assert not at.exception
    assert at.title[0].value == "DA Daily"
    assert _labels(at) == ["Sign in"]
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "auth" not in at.session_state


def test_with_an_auth_section_the_council_button_is_offered(app_db):
    at = _app({"auth": FLAT}).run()
    assert not at.exception
    assert _labels(at) == ["Sign in with your council account", "Sign in"]
    assert [t.label for t in at.text_input] == ["Username", "Password"]


def test_fresh_claims_of_a_known_email_sign_in(app_db):
    at = _app({"auth": FLAT}, claims(email=EMAIL.upper())).run()
    assert not at.exception
    assert at.session_state["auth"]["method"] == "oidc"
    assert at.sidebar.caption[0].value == "Signed in as Casey Coordinator (coordinator)"
    assert at.title[0].value != "DA Daily"


def test_fresh_claims_of_an_unknown_email_are_refused(app_db):
    at = _app({"auth": FLAT}, claims(email="nobody@northshire.example.gov.uk")).run()
    assert not at.exception
    assert at.error[0].value == oidc.NOT_SET_UP
    assert _labels(at) == ["Back to sign-in"]
    assert "auth" not in at.session_state
    at.button(key="oidc_back").click().run()  # st.logout(): st.user is emptied
    assert not at.exception
    assert at.user.get("is_logged_in") is False
    with session_scope(get_engine(app_db)) as s:
        assert [json.loads(e.details)["reason"] for e in events(s, "login_failed")] == ["unknown email"]


def test_an_old_identity_cookie_does_not_sign_in(app_db):
    old = claims(iat=int(time.time()) - 3600)
    at = _app({"auth": FLAT}, old).run()
    assert not at.exception
    assert "auth" not in at.session_state
    assert _labels(at) == ["Sign in with your council account", "Sign in"]
    with session_scope(get_engine(app_db)) as s:
        assert events(s, "login") == [] and events(s, "login_failed") == []
