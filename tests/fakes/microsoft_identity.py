"""Fake Microsoft identity platform (Entra ID, v2.0 endpoints) for tests.

Implements exactly what MSAL Python needs for the flows caldaemon uses:

* ``GET  /{tenant}/v2.0/.well-known/openid-configuration`` (tenant discovery;
  MSAL reads ``authorization_endpoint``, ``token_endpoint`` and
  ``device_authorization_endpoint`` from it, see ``msal/authority.py``),
* ``GET  /{tenant}/discovery/v2.0/keys`` (JWKS for the tokens we sign),
* ``POST /{tenant}/oauth2/v2.0/devicecode`` (device authorization request),
* ``POST /{tenant}/oauth2/v2.0/token`` with the ``device_code``,
  ``refresh_token`` and ``client_credentials`` grants.

References:
https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
https://learn.microsoft.com/entra/identity-platform/reference-error-codes

Instance discovery (``https://login.microsoftonline.com/common/discovery/instance``)
is not served: MSAL must be built with ``instance_discovery=False``.

This module holds no lock of its own; every public method must be called
with the lock passed to :class:`Identity` held (``MicrosoftServer`` does so).
Users, apps and grants are in identity_model.py, token minting and the token
endpoint in identity_tokens.py, client authentication in identity_clients.py.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

import jwt
from cryptography import x509

from .http import Reply
from .identity_model import (
    APPLICATION_PERMISSIONS,
    DEFAULT_DELEGATED_PERMISSIONS,
    DEVICE_CODE_GRANT,
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    JWT_BEARER_ASSERTION,
    NO_STORE,
    OIDC_SCOPES,
    AccessGrant,
    Client,
    DeviceCode,
    IdentityError,
    RefreshGrant,
    ScopeRequest,
    User,
    form_required,
    key_id,
    signing_key,
)
from .identity_tokens import TokenService

__all__ = [
    "APPLICATION_PERMISSIONS",
    "DEFAULT_DELEGATED_PERMISSIONS",
    "DEVICE_CODE_GRANT",
    "GRAPH_APP_ID",
    "GRAPH_RESOURCE",
    "JWT_BEARER_ASSERTION",
    "OIDC_SCOPES",
    "AccessGrant",
    "Client",
    "DeviceCode",
    "Identity",
    "IdentityError",
    "RefreshGrant",
    "Reply",
    "ScopeRequest",
    "User",
]

_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class Identity(TokenService):
    """State and request handling of the fake identity platform."""

    # -- seeding / inspection -------------------------------------------------

    def add_user(self, upn: str, user_id: str | None = None) -> User:
        if self.find_user(upn) is not None:
            raise ValueError(f"user {upn!r} already exists")
        oid = user_id or str(uuid.uuid4())
        name = upn.split("@", 1)[0].replace(".", " ").title()
        user = User(oid=oid, upn=upn, display_name=name)
        self._users[oid] = user
        return user

    def find_user(self, key: str) -> User | None:
        """Look a user up by object id or (case-insensitive) UPN."""
        if key in self._users:
            return self._users[key]
        lowered = key.lower()
        return next((u for u in self._users.values() if u.upn.lower() == lowered), None)

    def user(self, key: str) -> User:
        found = self.find_user(key)
        if found is None:
            raise KeyError(f"no such user: {key!r}")
        return found

    def register_client(
        self,
        client_id: str,
        secret: str | None,
        certificate: str | bytes | x509.Certificate | None,
        name: str | None,
    ) -> None:
        if isinstance(certificate, str):
            certificate = certificate.encode("ascii")
        if isinstance(certificate, bytes):
            certificate = x509.load_pem_x509_certificate(certificate)
        self._clients[client_id] = Client(client_id, secret, certificate, name or client_id)

    def approve_device_code(self, user: User, user_code: str | None) -> None:
        pending = self._pending_device_code(user_code)
        pending.approved_oid = user.oid
        # Signing in through the device code page also consents to the app.
        self._consents.add((user.oid, pending.client_id))

    def decline_device_code(self, user_code: str | None) -> None:
        self._pending_device_code(user_code).declined = True

    def revoke_refresh_tokens(self, user: User, code: Literal[50173, 70008]) -> None:
        user.min_refresh_serial = next(self._serials)
        user.revocation_code = code

    def revoke_consent(self, client_id: str) -> None:
        self._consents = {c for c in self._consents if c[1] != client_id}

    def expire_access_tokens(self) -> None:
        self._min_access_serial = next(self._serials)

    # -- HTTP ---------------------------------------------------------------------

    def handle(
        self,
        method: str,
        segments: Sequence[str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply | None:
        """Answer an identity request, or return None if the path is not ours."""
        if len(segments) != 4:
            return None
        tenant, *rest = segments
        route = "/".join(rest).lower()
        handlers = {
            ("GET", "v2.0/.well-known/openid-configuration"): self._openid_configuration,
            ("GET", "discovery/v2.0/keys"): self._keys,
            ("POST", "oauth2/v2.0/devicecode"): self._device_authorization,
            ("POST", "oauth2/v2.0/token"): self._token,
        }
        handler = handlers.get((method, route))
        if handler is None:
            return None
        correlation_id = headers.get("client-request-id") or str(uuid.uuid4())
        try:
            if tenant.lower() not in self._tenant_aliases():
                raise IdentityError(
                    400,
                    "invalid_tenant" if method == "GET" else "invalid_request",
                    90002,
                    f"Tenant '{tenant}' not found. Check to make sure you have the "
                    "correct tenant ID and are signing into the correct cloud.",
                )
            return handler(tenant, headers, body)
        except IdentityError as exc:
            return self.error_reply(exc, correlation_id)

    def error_reply(self, exc: IdentityError, correlation_id: str) -> Reply:
        """Shape an error like AAD does (``error_description`` embeds ids)."""
        trace_id = str(uuid.uuid4())
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        payload: dict[str, Any] = {
            "error": exc.error,
            "error_description": (
                f"AADSTS{exc.code}: {exc.message}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {now}"
            ),
            "error_codes": [exc.code],
            "timestamp": now,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{self.base_url}/error?code={exc.code}",
        }
        if exc.suberror:
            payload["suberror"] = exc.suberror
        extra: tuple[tuple[str, str], ...] = ()
        if exc.status == 401:
            extra = (("WWW-Authenticate", 'Basic realm=""'),)
        return Reply.json(exc.status, payload, (*NO_STORE, *extra))

    def _tenant_aliases(self) -> set[str]:
        return {self.tenant.lower(), "common", "organizations"}

    def _openid_configuration(self, tenant: str, _h: Mapping[str, str], _b: bytes) -> Reply:
        # Mirrors https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration;
        # for /common the issuer keeps the literal "{tenantid}" placeholder.
        tenant_in_issuer = self.tenant if tenant.lower() == self.tenant.lower() else "{tenantid}"
        host = self.base_url.split("://", 1)[-1]
        document = {
            "token_endpoint": self._endpoint(tenant, "oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": self._endpoint(tenant, "discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.base_url}/{tenant_in_issuer}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": self._endpoint(tenant, "oauth2/v2.0/authorize"),
            "device_authorization_endpoint": self._endpoint(tenant, "oauth2/v2.0/devicecode"),
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "oid",
                "email",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": host,
            "cloud_graph_host_name": host,
            "msgraph_host": host,
        }
        return Reply.json(200, document)

    def _keys(self, _t: str, _h: Mapping[str, str], _b: bytes) -> Reply:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key().public_key()))
        jwk.update(kid=key_id(), use="sig", issuer=f"{self.base_url}/{self.tenant}/v2.0")
        return Reply.json(200, {"keys": [jwk]})

    # -- device authorization -------------------------------------------------------

    def _device_authorization(self, _t: str, _h: Mapping[str, str], body: bytes) -> Reply:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        client_id = form_required(form, "client_id")
        scopes = self._parse_scopes(form_required(form, "scope"))
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        entry = DeviceCode(
            device_code=secrets.token_urlsafe(48),
            user_code=user_code,
            client_id=client_id,
            scopes=scopes,
            serial=next(self._serials),
            expires_at=time.time() + self.device_code_lifetime,
        )
        self._device_codes[entry.device_code] = entry
        verification_uri = f"{self.base_url}/devicelogin"
        return Reply.json(
            200,
            {
                "user_code": user_code,
                "device_code": entry.device_code,
                "verification_uri": verification_uri,
                "expires_in": self.device_code_lifetime,
                # Real AAD says 5; 1 keeps MSAL's polling loop short in tests.
                "interval": 1,
                "message": (
                    f"To sign in, use a web browser to open the page {verification_uri} "
                    f"and enter the code {user_code} to authenticate."
                ),
            },
            NO_STORE,
        )

    def _pending_device_code(self, user_code: str | None) -> DeviceCode:
        now = time.time()
        candidates = [
            d
            for d in self._device_codes.values()
            if d.approved_oid is None
            and not d.declined
            and not d.redeemed
            and d.expires_at > now
            and (user_code is None or d.user_code == user_code.upper())
        ]
        if not candidates:
            raise LookupError("no pending device code" + (f" {user_code!r}" if user_code else ""))
        return max(candidates, key=lambda d: d.serial)
