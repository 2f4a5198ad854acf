"""Optional sign-in through a council's own identity provider (OpenID Connect, via Streamlit's ``st.login``).

Streamlit (with Authlib) runs the OIDC flow and hands the app the ID token's claims (``st.user``). This module
holds the rule that turns those claims into a DA Daily account, so it is tested without Streamlit:

* Each ID token opens at most one DA Daily session, and only while it is fresh (``iat`` within
  ``MAX_CLAIMS_AGE_SECONDS``). Streamlit keeps the identity in a cookie for 30 days; without this, the cookie would
  sign the person straight back in after an idle timeout, a sign-out, or in another tab. Instead every DA Daily
  session starts with a trip through the identity provider (which may not ask for a password again).
* The person is matched by the ``email`` claim, case-insensitively, against ``User.email``, and only when the
  provider does not say the address is unverified (``email_verified`` false). Exactly one account must match.
* The account must exist, not be disabled and not be locked. Role, agency and school come from the DA Daily
  account, never from the identity provider's claims.
* Every attempt is audited (``login`` with ``method="oidc"``, or ``login_failed`` with the reason); a refusal is
  committed before ``AuthError`` is raised, so it survives the caller's rollback (as ``core.auth.authenticate``).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from core import audit
from core.auth import AuthError
from core.models import User
from core.timeutil import utcnow

MAX_CLAIMS_AGE_SECONDS = 300  # an ID token issued more than 5 minutes ago no longer signs anyone in
CLOCK_SKEW_SECONDS = 60  # the identity provider's clock may be this far ahead of ours

NOT_SET_UP = "Your council account is not set up in DA Daily; ask a coordinator."
UNVERIFIED = "Your council account's email address is not verified, so DA Daily cannot match it; ask a coordinator."
AMBIGUOUS = "More than one DA Daily account has your email address; ask a coordinator."
DISABLED = "This account is disabled. Ask an administrator."
LOCKED = "Too many failed attempts: this account is locked for a while. Try later or ask an administrator."
STALE = "Your council sign-in has expired or was already used; sign in with your council account again."

_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


# ---------------------------------------------------------------------------------------------- configuration


def _auth_section(secrets: Any) -> Mapping | None:
    """The ``[auth]`` section of ``st.secrets`` (or any mapping), or None. A missing secrets file is no section."""
    if secrets is None:
        return None
    try:
        auth = secrets.get("auth")
    except (FileNotFoundError, KeyError):  # st.secrets without a secrets.toml raises a FileNotFoundError subclass
        return None
    return auth if isinstance(auth, Mapping) else None


def login_provider(secrets: Any) -> str | None:
    """The provider to pass to ``st.login``: ``"default"`` for Streamlit's flat ``[auth]`` format, the name of the
    first complete ``[auth.<name>]`` section otherwise; None when OIDC sign-in is not configured."""
    auth = _auth_section(secrets)
    if auth is None or not auth.get("redirect_uri") or not auth.get("cookie_secret"):
        return None
    if all(auth.get(k) for k in _PROVIDER_KEYS):
        return "default"
    for name, section in auth.items():
        # Streamlit refuses provider names with "_" (its own cookie/state format uses it as a separator).
        if isinstance(section, Mapping) and "_" not in name and all(section.get(k) for k in _PROVIDER_KEYS):
            return name
    return None


def oidc_configured(secrets: Any) -> bool:
    """Whether the sign-in page offers "Sign in with your council account" (``[auth]`` present and complete)."""
    return login_provider(secrets) is not None


# ---------------------------------------------------------------------------------------------- claims


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def claims_are_fresh(claims: Mapping, now: float | None = None) -> bool:
    """True while the ID token behind ``claims`` was issued at most ``MAX_CLAIMS_AGE_SECONDS`` ago (and not in the
    future beyond the clock skew allowed). Claims without a numeric ``iat`` are never fresh."""
    iat = _number(claims.get("iat"))
    if iat is None:
        return False
    now = time.time() if now is None else now
    return now - MAX_CLAIMS_AGE_SECONDS <= iat <= now + CLOCK_SKEW_SECONDS


# ID tokens that have opened a DA Daily session (or been refused) in this server process: key -> when (epoch s).
# Entries older than the freshness window are dropped (such tokens are refused as stale anyway).
_used_tokens: dict[tuple[str, ...], float] = {}
_used_lock = threading.Lock()


def _token_key(claims: Mapping) -> tuple[str, ...]:
    """One ID token: the provider's issuer and subject, the nonce of the authorisation request and ``iat``."""
    return tuple(str(claims.get(k)) for k in ("iss", "sub", "aud", "nonce", "iat"))


def claims_usable(claims: Mapping, now: float | None = None) -> bool:
    """Fresh (``claims_are_fresh``) and not yet used for a DA Daily session: the sign-in page tries these claims,
    and otherwise ignores the identity cookie (the person signs in with the identity provider again)."""
    if not claims_are_fresh(claims, now):
        return False
    with _used_lock:
        return _token_key(claims) not in _used_tokens


def _mark_used(claims: Mapping, now: float) -> bool:
    """Record the token as used; False if it already was (checked and set under one lock: two sessions racing
    with the same cookie cannot both use it)."""
    key = _token_key(claims)
    with _used_lock:
        for old, at in list(_used_tokens.items()):
            if at < now - MAX_CLAIMS_AGE_SECONDS - 2 * CLOCK_SKEW_SECONDS:
                del _used_tokens[old]
        if key in _used_tokens:
            return False
        _used_tokens[key] = now
        return True


def _says_unverified(value: Any) -> bool:
    """``email_verified`` is false (a missing claim is not "false"; some providers send "false" as a string)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value.strip().lower() != "true"
    return True  # a number, a list...: not a statement that the address is verified


def _text(value: Any, limit: int = 320) -> str | None:
    return None if value is None else str(value)[:limit]


def user_for_claims(session: Session, claims: Mapping, *, now: float | None = None) -> User:
    """The DA Daily account for an identity provider's ``claims`` (``st.user``), or ``AuthError`` with a message
    that is safe to show. The attempt is audited; a refusal is committed before the error is raised."""
    try:
        return _user_for_claims(session, claims, time.time() if now is None else now)
    except AuthError:
        session.commit()
        raise


def _refuse(session: Session, user: User | None, reason: str, message: str, claims: Mapping, email: Any) -> None:
    audit.record(session, user, "login_failed", "user", user.id if user else None, outcome="refused",
                 reason=reason, method="oidc", email=_text(email), issuer=_text(claims.get("iss")),
                 subject=_text(claims.get("sub")))
    raise AuthError(message)


def _user_for_claims(session: Session, claims: Mapping, now: float) -> User:
    email = claims.get("email")
    if not claims_are_fresh(claims, now):
        _refuse(session, None, "stale claims", STALE, claims, email)
    if not _mark_used(claims, now):
        _refuse(session, None, "claims already used", STALE, claims, email)
    if not isinstance(email, str) or "@" not in email.strip():
        _refuse(session, None, "no email claim", NOT_SET_UP, claims, email)
    if _says_unverified(claims.get("email_verified")):
        _refuse(session, None, "email not verified", UNVERIFIED, claims, email)
    wanted = email.strip().lower()
    # Compared in Python, not with SQL lower(): SQLite's lower() folds ASCII only, PostgreSQL's follows the
    # collation; this way both databases match exactly the same accounts. The users table is small.
    matches = [u for u in session.exec(select(User).where(User.email.is_not(None))).all()
               if u.email.strip().lower() == wanted]
    if not matches:
        _refuse(session, None, "unknown email", NOT_SET_UP, claims, email)
    if len(matches) > 1:
        _refuse(session, None, "email matches several accounts", AMBIGUOUS, claims, email)
    user = matches[0]
    if user.disabled:
        _refuse(session, user, "disabled", DISABLED, claims, email)
    if user.locked_until_utc and user.locked_until_utc > utcnow():
        _refuse(session, user, "locked", LOCKED, claims, email)
    user.last_login_utc = utcnow()
    session.add(user)
    audit.record(session, user, "login", "user", user.id, method="oidc", email=_text(email),
                 issuer=_text(claims.get("iss")), subject=_text(claims.get("sub")))
    return user
