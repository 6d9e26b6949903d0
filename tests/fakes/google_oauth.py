"""Google's OAuth 2.0 token endpoint, faked (RFC 6749 section 5 responses, Google's error strings).

Grants: refresh_token, authorization_code and the service accounts' jwt-bearer
(whose signatures are not checked).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from urllib.parse import parse_qs

from .google_common import JSON, RecordedRequest, json_reply
from .http import Reply

__all__ = ["TokenEndpoint"]

_DEFAULT_SCOPE = "https://www.googleapis.com/auth/calendar"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class TokenEndpoint:
    """Refresh and access tokens, and the endpoint that issues them."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._refresh_tokens: set[str] = set()
        # access token -> the refresh token it was minted from (None for service accounts)
        self._access_tokens: dict[str, str | None] = {}

    def issue_refresh_token(self) -> str:
        token = "1//fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens.add(token)
        return token

    def revoke_refresh_token(self, token: str) -> None:
        """Revoke a refresh token and the access tokens minted from it."""
        with self._lock:
            self._refresh_tokens.discard(token)
            self._access_tokens = {a: r for a, r in self._access_tokens.items() if r != token}

    def expire_access_tokens(self) -> None:
        """Forget every access token issued so far (next use -> 401)."""
        with self._lock:
            self._access_tokens.clear()

    def knows(self, access_token: str) -> bool:
        """Whether ``access_token`` was issued here and is still valid."""
        with self._lock:
            return access_token in self._access_tokens

    def handle(self, request: RecordedRequest) -> Reply:
        """Answer a request to the token endpoint."""
        fields = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        form = {name: values[-1] for name, values in fields.items()}
        grant = form.get("grant_type", "")
        if request.method != "POST" or not grant:
            return _oauth_error(400, "invalid_request", "Required parameter is missing: grant_type")
        if grant in ("refresh_token", "authorization_code") and not _client_id(request, form):
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        scope = form.get("scope") or _DEFAULT_SCOPE
        with self._lock:
            if grant == "refresh_token":
                parent = form.get("refresh_token", "")
                if parent not in self._refresh_tokens:
                    return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
                return self._grant(scope, parent)
            if grant == "authorization_code":
                if not form.get("code"):
                    return _oauth_error(400, "invalid_request", "Missing required parameter: code")
                fresh = "1//fake-" + secrets.token_urlsafe(24)
                self._refresh_tokens.add(fresh)
                return self._grant(scope, fresh, refresh_token=fresh)
        if grant == _JWT_BEARER:
            claims = _jwt_claims(form.get("assertion", ""))
            if claims is None:
                return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
            with self._lock:
                return self._grant(str(claims.get("scope") or scope), None)
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _grant(self, scope: str, parent: str | None, **extra: str) -> Reply:
        access = "ya29.fake-" + secrets.token_urlsafe(24)
        self._access_tokens[access] = parent
        payload = {
            "access_token": access,
            "expires_in": 3599,
            "scope": scope,
            "token_type": "Bearer",
            **extra,
        }
        return json_reply(200, payload, {"Cache-Control": "no-store"})


def _client_id(request: RecordedRequest, form: dict[str, str]) -> str | None:
    """client_id from the form body or from HTTP Basic client auth (RFC 6749 section 2.3.1)."""
    if form.get("client_id"):
        return form["client_id"]
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded).decode().partition(":")[0] or None
    except ValueError:
        return None


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return json_reply(status, {"error": error, "error_description": description})


def _jwt_claims(assertion: str) -> JSON | None:
    """Claims of a structurally valid JWT (signatures are not checked)."""
    segments = assertion.split(".")
    if len(segments) != 3 or not all(segments):
        return None
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
            for segment in segments[:2]
        )
    except ValueError:
        return None
    return claims if isinstance(header, dict) and isinstance(claims, dict) else None
