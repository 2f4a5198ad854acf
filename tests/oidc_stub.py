"""A small OpenID Connect provider for the tests: the "council identity provider" that ``st.login`` talks to.

It runs in a thread of the test process (stdlib ``http.server``) on 127.0.0.1 and a free port. There is no login
form: ``/authorize`` signs in whoever ``stub.identity`` says (set it per test) and redirects straight back to the
app with a one-time ``code`` and the app's ``state``. Streamlit's server (Authlib inside it) then calls ``/token``
from the server side, on loopback, and checks the ``id_token``: RS256 with a key generated at start and published
at ``/jwks``, with the ``nonce`` of the authorisation request, ``iss``, ``aud``, ``exp`` and ``iat``.

Real checks, so a broken client fails here as it would against a real provider: the registered ``client_id``,
``client_secret`` (HTTP Basic or form), exact ``redirect_uri``, one-time codes that expire, and PKCE (S256) when
the client sent a code challenge. ``/logout`` is the ``end_session_endpoint`` (RP-initiated logout) that
``st.logout`` follows; it counts the logouts and redirects to ``post_logout_redirect_uri``.

Endpoints: ``/.well-known/openid-configuration``, ``/authorize``, ``/token``, ``/jwks``, ``/userinfo``,
``/logout``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_LIFETIME_SECONDS = 60
TOKEN_LIFETIME_SECONDS = 300


class OIDCStub:
    """``OIDCStub(client_id, client_secret).start()``; ``issuer`` is its base URL, ``metadata_url`` the discovery
    document. Set ``identity`` (a dict of claims: ``sub``, ``email``, ``email_verified``, ``name``) before the
    browser goes through ``/authorize``; ``redirect_uris`` must hold the app's ``/oauth2callback``."""

    def __init__(self, client_id: str = "dadaily-test", client_secret: str | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.redirect_uris: set[str] = set()
        self.identity: dict[str, Any] = {}
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"},
                                       private=True)
        self.requests: list[str] = []  # "METHOD path" of every request, for debugging a failed test
        self.issued: list[dict[str, Any]] = []  # the claims of every ID token issued
        self.logouts = 0
        self._codes: dict[str, dict[str, Any]] = {}
        self._access_tokens: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def issuer(self) -> str:
        assert self._server is not None, "start() the stub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> OIDCStub:
        stub = self

        class Handler(_Handler):
            pass

        Handler.stub = stub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OIDCStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------ the provider

    def metadata(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """(status, headers, json body): a redirect back to the app, or an error page for a bad request."""
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or redirect_uri not in self.redirect_uris:
            # Never redirect to an unregistered URI (an open redirector); show the error instead.
            return 400, {}, {"error": "invalid_request", "error_description": "unknown client or redirect_uri"}
        error = None
        if query.get("response_type") != "code":
            error = "unsupported_response_type"
        elif "openid" not in query.get("scope", "").split():
            error = "invalid_scope"
        elif query.get("code_challenge") and query.get("code_challenge_method", "plain") != "S256":
            error = "invalid_request"
        elif not self.identity:
            error = "access_denied"
        params: dict[str, str] = {"state": query["state"]} if "state" in query else {}
        if error:
            params["error"] = error
        else:
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = {
                    "client_id": self.client_id, "redirect_uri": redirect_uri, "nonce": query.get("nonce"),
                    "code_challenge": query.get("code_challenge"), "identity": dict(self.identity),
                    "expires": time.time() + CODE_LIFETIME_SECONDS,
                }
            params["code"] = code
        sep = "&" if "?" in redirect_uri else "?"
        return 302, {"Location": redirect_uri + sep + urllib.parse.urlencode(params)}, None

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            raw = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = (urllib.parse.unquote_plus(p) for p in raw.partition(":"))
        if client_id != self.client_id or client_secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # one use only
        if grant is None or grant["expires"] < time.time() or grant["redirect_uri"] != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        if grant["code_challenge"]:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != grant["code_challenge"]:
                return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        identity = grant["identity"]
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + TOKEN_LIFETIME_SECONDS,
                  "auth_time": now, **identity}
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        id_token = jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)
        access_token = secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[access_token] = identity
            self.issued.append(claims)
        return 200, {"access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS,
                     "scope": "openid email profile", "id_token": id_token}

    def userinfo(self, authorization: str | None) -> tuple[int, dict[str, Any]]:
        token = authorization[7:] if authorization and authorization.startswith("Bearer ") else ""
        with self._lock:
            identity = self._access_tokens.get(token)
        if identity is None:
            return 401, {"error": "invalid_token"}
        return 200, dict(identity)

    def logout(self, query: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        with self._lock:
            self.logouts += 1
        target = query.get("post_logout_redirect_uri")
        if target in self.redirect_uris:
            return 302, {"Location": target}, None
        return 200, {}, {"logged_out": True}


class _Handler(BaseHTTPRequestHandler):
    stub: OIDCStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # quiet: the tests keep ``stub.requests`` instead
        pass

    def _send(self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _query(self) -> tuple[str, dict[str, str]]:
        parsed = urllib.parse.urlsplit(self.path)
        return parsed.path, dict(urllib.parse.parse_qsl(parsed.query))

    def do_GET(self) -> None:
        path, query = self._query()
        self.stub.requests.append(f"GET {path}")
        stub = self.stub
        if path == "/.well-known/openid-configuration":
            self._send(200, stub.metadata())
        elif path == "/jwks":
            self._send(200, stub.jwks())
        elif path == "/authorize":
            status, headers, body = stub.authorize(query)
            self._send(status, body, headers)
        elif path == "/userinfo":
            self._send(*stub.userinfo(self.headers.get("Authorization")))
        elif path == "/logout":
            status, headers, body = stub.logout(query)
            self._send(status, body, headers)
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        path, _ = self._query()
        self.stub.requests.append(f"POST {path}")
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        if path == "/token":
            self._send(*self.stub.token(form, self.headers.get("Authorization")))
        elif path == "/userinfo":
            self._send(*self.stub.userinfo(self.headers.get("Authorization")))
        else:
            self._send(404, {"error": "not_found"})
