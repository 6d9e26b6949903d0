"""Tokens of the fake Microsoft identity platform: state, minting and the token endpoint.

Grants: device_code, refresh_token and client_credentials.  References:
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
https://learn.microsoft.com/entra/identity-platform/reference-error-codes

No lock of its own; every public method must be called with the lock passed
in held (``MicrosoftServer`` does so).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import jwt

from .http import Reply
from .identity_clients import authenticate_client
from .identity_model import (
    APPLICATION_PERMISSIONS,
    DEVICE_CODE_GRANT,
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    NO_STORE,
    OIDC_SCOPES,
    AccessGrant,
    Client,
    DeviceCode,
    IdentityError,
    RefreshGrant,
    ScopeRequest,
    User,
    b64url,
    form_required,
    form_value,
    key_id,
    missing_parameter,
    signing_key,
)

__all__ = ["TokenService"]


class TokenService:
    """Users, apps, device codes and tokens, and the ``oauth2/v2.0/token`` endpoint."""

    def __init__(self, tenant: str, lock: threading.RLock) -> None:
        self.tenant = tenant
        self.base_url = ""
        self.access_token_lifetime = 3600
        self.device_code_lifetime = 900
        self._lock = lock
        self._users: dict[str, User] = {}
        self._clients: dict[str, Client] = {}
        self._device_codes: dict[str, DeviceCode] = {}
        self._refresh_tokens: dict[str, RefreshGrant] = {}
        self._consents: set[tuple[str, str]] = set()
        self._serials = itertools.count(1)
        self._min_access_serial = 0

    def _endpoint(self, tenant: str, suffix: str) -> str:
        return f"{self.base_url}/{tenant}/{suffix}"

    def mint_access_token(
        self, client_id: str, user: User | None, permissions: Sequence[str]
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": GRAPH_RESOURCE,
            "iss": f"{self.base_url}/{self.tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.access_token_lifetime,
            "appid": client_id,
            "tid": self.tenant,
            "ver": "1.0",
            "uti": secrets.token_urlsafe(16),
            "xms_seq": next(self._serials),
        }
        if user is None:
            principal = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{client_id}"))
            claims.update(oid=principal, sub=principal, idtyp="app", roles=list(permissions))
        else:
            claims.update(
                oid=user.oid,
                sub=b64url(hashlib.sha256(f"{user.oid}:{client_id}".encode()).digest()),
                idtyp="user",
                upn=user.upn,
                unique_name=user.upn,
                name=user.display_name,
                scp=" ".join(permissions),
            )
        return jwt.encode(claims, signing_key(), algorithm="RS256", headers={"kid": key_id()})

    def validate_access_token(self, token: str) -> AccessGrant | str:
        """Return the grant, or the message Graph puts in its 401 answer."""
        if token.count(".") != 2:
            return (
                "IDX14100: JWT is not well formed, there are no dots (.).\n"
                "The token needs to be in JWS or JWE Compact Serialization Format."
            )
        try:
            claims = jwt.decode(
                token,
                signing_key().public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_RESOURCE, GRAPH_APP_ID],
                options={"require": ["exp", "iat", "appid"]},
            )
        except jwt.ExpiredSignatureError:
            return "Lifetime validation failed, the token is expired."
        except jwt.InvalidTokenError:
            return "Access token validation failure. Invalid audience or signature."
        if int(claims.get("xms_seq", 0)) < self._min_access_serial:
            return "Lifetime validation failed, the token is expired."
        if claims.get("idtyp") == "app":
            return AccessGrant(
                claims["appid"], None, frozenset(r.lower() for r in claims.get("roles", []))
            )
        if claims.get("oid") not in self._users:
            return "Access token validation failure. The user does not exist."
        scp = str(claims.get("scp", "")).split()
        return AccessGrant(claims["appid"], claims["oid"], frozenset(s.lower() for s in scp))

    # -- token endpoint ---------------------------------------------------------------

    def _token(self, tenant: str, headers: Mapping[str, str], body: bytes) -> Reply:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        grant_type = form_required(form, "grant_type")
        audiences = [self._endpoint(alias, "oauth2/v2.0/token") for alias in (tenant, self.tenant)]
        client = authenticate_client(self._clients, self.tenant, audiences, form, headers)
        if grant_type == DEVICE_CODE_GRANT:
            payload = self._device_code_grant(client, form)
        elif grant_type == "refresh_token":
            payload = self._refresh_token_grant(client, form)
        elif grant_type == "client_credentials":
            payload = self._client_credentials_grant(client, form)
        else:
            raise IdentityError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        return Reply.json(200, payload, NO_STORE)

    def _device_code_grant(self, client: Client, form: Mapping[str, list[str]]) -> dict[str, Any]:
        code = form_required(form, "device_code")
        entry = self._device_codes.get(code)
        if entry is None or entry.client_id != client.client_id:
            raise IdentityError(
                400,
                "invalid_grant",
                70000,
                "The provided value for the input parameter 'device_code' is not valid.",
            )
        if entry.redeemed:
            raise IdentityError(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new "
                "valid code or use an existing refresh token.",
            )
        if entry.declined:
            raise IdentityError(
                400, "authorization_declined", 70000, "The user has declined authorization."
            )
        if time.time() >= entry.expires_at:
            raise IdentityError(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. "
                "This device code has expired.",
            )
        if entry.approved_oid is None:
            raise IdentityError(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        entry.redeemed = True
        return self._user_token_response(
            client, self._users[entry.approved_oid], entry.scopes, form
        )

    def _refresh_token_grant(self, client: Client, form: Mapping[str, list[str]]) -> dict[str, Any]:
        grant = self._refresh_tokens.get(form_required(form, "refresh_token"))
        if grant is None or grant.client_id != client.client_id:
            raise IdentityError(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
                suberror="bad_token",
            )
        user = self._users.get(grant.user_oid)
        if user is None:
            raise IdentityError(
                400, "invalid_grant", 50034, "The user account does not exist in the directory."
            )
        if grant.serial < user.min_refresh_serial:
            if user.revocation_code == 70008:
                message = (
                    "The provided authorization code or refresh token has expired due to "
                    "inactivity. Send a new interactive authorization request for this user "
                    "and resource."
                )
            else:
                message = (
                    "The provided grant has expired due to it being revoked, a fresh auth "
                    "token is needed. The user might have changed or reset their password."
                )
            raise IdentityError(
                400, "invalid_grant", user.revocation_code, message, suberror="bad_token"
            )
        if (user.oid, client.client_id) not in self._consents:
            raise IdentityError(
                400,
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with "
                f"ID '{client.client_id}'. Send an interactive authorization request for "
                "this user and resource.",
                suberror="consent_required",
            )
        requested = form_value(form, "scope")
        scopes = self._parse_scopes(requested) if requested else grant.scopes
        return self._user_token_response(client, user, scopes, form)

    def _client_credentials_grant(
        self, client: Client, form: Mapping[str, list[str]]
    ) -> dict[str, Any]:
        if not client.confidential:
            raise IdentityError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        raw = form_required(form, "scope")
        scopes = self._parse_scopes(raw)
        # The client credentials flow only takes "{resource}/.default"; see
        # https://learn.microsoft.com/entra/identity-platform/scopes-oidc#the-default-scope
        if scopes.oidc or len(scopes.permissions) != 1 or not scopes.is_default:
            raise IdentityError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {raw} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        token = self.mint_access_token(client.client_id, None, APPLICATION_PERMISSIONS)
        # AAD's client-credentials answer carries no "scope" and no refresh token.
        return {
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": token,
        }

    def _user_token_response(
        self,
        client: Client,
        user: User,
        scopes: ScopeRequest,
        form: Mapping[str, list[str]],
    ) -> dict[str, Any]:
        permissions = scopes.granted_delegated()
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scopes.response_scope(),
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": self.mint_access_token(client.client_id, user, permissions),
        }
        if "offline_access" in scopes.oidc:
            refresh_token = secrets.token_urlsafe(64)
            self._refresh_tokens[refresh_token] = RefreshGrant(
                client.client_id, user.oid, scopes, next(self._serials)
            )
            response["refresh_token"] = refresh_token
        if "openid" in scopes.oidc:
            response["id_token"] = self._id_token(client, user)
        if form_value(form, "client_info") == "1":
            # MSAL sends client_info=1 and builds the account's home_account_id
            # ("{uid}.{utid}") from this; see msal/token_cache.py.
            info = json.dumps({"uid": user.oid, "utid": self.tenant}).encode("utf-8")
            response["client_info"] = b64url(info)
        return response

    def _id_token(self, client: Client, user: User) -> str:
        now = int(time.time())
        claims = {
            "aud": client.client_id,
            "iss": f"{self.base_url}/{self.tenant}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": user.display_name,
            "oid": user.oid,
            "preferred_username": user.upn,
            "sub": b64url(hashlib.sha256(f"{user.oid}:{client.client_id}".encode()).digest()),
            "tid": self.tenant,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
        return jwt.encode(claims, signing_key(), algorithm="RS256", headers={"kid": key_id()})

    def _parse_scopes(self, raw: str) -> ScopeRequest:
        tokens = tuple(raw.split())
        if not tokens:
            raise missing_parameter("scope")
        oidc: set[str] = set()
        permissions: list[str] = []
        for scope in tokens:
            if scope.lower() in OIDC_SCOPES:
                oidc.add(scope.lower())
                continue
            resource, _, permission = scope.rpartition("/")
            if resource and resource.rstrip("/").lower() not in (GRAPH_RESOURCE, GRAPH_APP_ID):
                raise IdentityError(
                    400,
                    "invalid_resource",
                    500011,
                    f"The resource principal named {resource} was not found in the tenant "
                    f"named {self.tenant}.",
                )
            permissions.append(permission)
        return ScopeRequest(tokens, tuple(permissions), frozenset(oidc))
